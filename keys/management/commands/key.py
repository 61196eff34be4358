"""`manage.py key create|list|edit|delete`: the original `btvep key`.

Values arrive as text and are read here rather than by argparse, so a bad
one is the operators' usual "Error: …" line and exit code 1, not a usage
dump with exit code 2.
"""

from __future__ import annotations

from datetime import datetime

from rich.table import Table
from rich.text import Text

from endpoint.core.commands import OperatorCommand
from endpoint.core.errors import OperatorError
from keys.expiry import parse_valid_until
from keys.models import ApiKey
from keys.services import do_create_key, do_delete_key, do_edit_key, find_key

UNLIMITED = "-1"


def parse_credits(text: str) -> int | None:
    """CLI credits: a whole number ≥ 0, or -1 for unlimited (None)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise OperatorError(f"credits must be a whole number, or -1 for unlimited; got {text!r}") from None
    if value == int(UNLIMITED):
        return None
    if value < 0:
        raise OperatorError(f"credits must be 0 or more, or -1 for unlimited; got {value}")
    return value


def _when(moment: datetime | None, empty: str) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else empty


def _cell(value: object) -> Text:
    # Text, not str: rich would read "[...]" in a key's name as markup.
    return Text(str(value))


def key_row(key: ApiKey) -> dict[str, object]:
    """A key as an operator sees it; never its secret."""
    return {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "owner": key.owner.get_username() if key.owner else "",
        "credits": "unlimited" if key.credits is None else key.credits,
        "enabled": "yes" if key.enabled else "no",
        "expires": _when(key.expires_at, "never"),
        "default strategy": key.default_strategy,
        "last used": _when(key.last_used_at, ""),
        "API calls": key.api_request_count,
        "miner calls": key.request_count,
    }


class Command(OperatorCommand):
    help = "Manage API keys: create, list, edit, delete."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list,edit,delete}")

        create = actions.add_parser("create", help="Create a key; its full value is printed once.")
        self._add_key_fields(create)

        actions.add_parser(
            "list",
            help="List all keys.",
            description="List all keys. 'API calls' counts the requests made with a key (/chat, /v1); "
            "'miner calls' counts the miners those requests asked (one request may ask several).",
        )

        edit = actions.add_parser("edit", help="Change a key.")
        edit.add_argument("query", help="The key's id, prefix or full value.")
        self._add_key_fields(edit)
        edit.add_argument(
            "-r", "--reset-requests", action="store_true", help="Set the key's miner calls count back to 0."
        )

        delete = actions.add_parser("delete", help="Delete a key.")
        delete.add_argument("query", help="The key's id, prefix or full value.")

    @staticmethod
    def _add_key_fields(parser) -> None:
        parser.add_argument("-n", "--name")
        parser.add_argument("-c", "--credits", help="Credits the key has; -1 means unlimited.")
        parser.add_argument(
            "-v",
            "--valid-until",
            dest="valid_until",
            help="When the key expires: a date (2025-01-01), a unix timestamp, -1/never/false for never, "
            "or English ('in 1 month', 'tomorrow', 'next week'; counted from the start of today, UTC).",
        )
        enabled = parser.add_mutually_exclusive_group()
        enabled.add_argument("-e", "--enable", dest="enabled", action="store_const", const=True)
        enabled.add_argument("-d", "--disable", dest="enabled", action="store_const", const=False)
        parser.add_argument("-s", "--strategy", help="Default strategy: 'top_n:N', 'best:N', 'uids:1,2' or empty.")

    def handle(self, *args, action: str, **options):
        getattr(self, f"handle_{action}")(**options)

    def handle_create(self, *, name, credits, valid_until, enabled, strategy, **_):
        new = do_create_key(
            name=name or "",
            credits=parse_credits(credits if credits is not None else UNLIMITED),
            expires_at=parse_valid_until(valid_until) if valid_until is not None else None,
            enabled=True if enabled is None else enabled,
            default_strategy=strategy or "",
        )
        self.stdout.write("New API key (shown only this once; store it now):")
        self.stdout.write(new.raw)
        self.print_keys([new.key])

    def handle_list(self, **_):
        keys = ApiKey.objects.select_related("owner").order_by("pk")
        self.print_keys(keys)

    def handle_edit(self, *, query, name, credits, valid_until, enabled, strategy, reset_requests, **_):
        # Read every value before touching the key, so a bad one changes nothing.
        changes: dict[str, object] = {}
        if name is not None:
            changes["name"] = name
        if credits is not None:
            changes["credits"] = parse_credits(credits)
        if valid_until is not None:
            changes["expires_at"] = parse_valid_until(valid_until)
        if enabled is not None:
            changes["enabled"] = enabled
        if strategy is not None:
            changes["default_strategy"] = strategy
        if reset_requests:
            changes["request_count"] = 0
        if not changes:
            raise OperatorError("nothing to change: give at least one of -n, -c, -v, -e/-d, -s, -r")
        key = do_edit_key(find_key(query), **changes)
        self.print_keys([key])

    def handle_delete(self, *, query, **_):
        key = find_key(query)
        label = f"{key.pk} ({key.prefix}…{', ' + key.name if key.name else ''})"
        do_delete_key(key)
        self.stdout.write(f"Deleted API key {label}.")

    def print_keys(self, keys) -> None:
        rows = [key_row(key) for key in keys]
        if not rows:
            self.stdout.write("No API keys yet. Create one with: manage.py key create -n NAME")
            return
        table = Table(*rows[0].keys())
        for row in rows:
            table.add_row(*(_cell(value) for value in row.values()))
        self.console.print(table)
