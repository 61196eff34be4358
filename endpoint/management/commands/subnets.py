"""`manage.py subnets list|add|edit|remove`: the subnets the endpoint sells
access to. Values arrive as text and are checked by ``endpoint.core.subnets``,
as the admin and /api/admin/subnets/ check them; a bad one is the operators'
usual "Error: …" line naming the option, and exit code 1."""

from __future__ import annotations

from django.utils import timezone
from rich.table import Table
from rich.text import Text

from endpoint.core.commands import OperatorCommand
from endpoint.core.errors import OperatorError, SubnetInputError
from endpoint.core.models import Subnet
from endpoint.core.subnets import SUBNET_FIELDS, do_add_subnet, do_edit_subnet, do_remove_subnet, list_subnets

# Option -> subnet field.
OPTIONS = {
    "name": "name",
    "kind": "kind",
    "network": "network",
    "netuid": "netuid",
    "source": "metagraph_source",
    "file": "metagraph_file",
    "miner_path": "miner_path",
    "price": "price",
    "strategy": "default_strategy",
}
FLAGS = {field: "--" + option.replace("_", "-") for option, field in OPTIONS.items()}
FLAGS["enabled"] = "--enable/--disable"
COLUMNS = (
    *("slug", "name", "kind", "network", "netuid", "source"),
    *("miner path", "price", "strategy", "enabled", "synced"),
)


def _synced(row: Subnet) -> str:
    if row.metagraph_synced_at is None:
        return "never"
    seconds = int((timezone.now() - row.metagraph_synced_at).total_seconds())
    return f"block {row.metagraph_block}, {seconds // 60}m ago" if seconds >= 120 else f"block {row.metagraph_block}"


def subnet_row(row: Subnet) -> list[Text]:
    # Text, not str: rich would read "[...]" in a name or path as markup.
    source = "chain" if row.metagraph_source == "chain" else row.metagraph_file or "file (none set)"
    cells = [
        row.slug,
        row.name,
        row.kind,
        row.network,
        row.netuid,
        source,
        row.miner_path,
        row.price,
        row.default_strategy,
        "yes" if row.enabled else "no",
        _synced(row),
    ]
    return [Text(str(cell)) for cell in cells]


class Command(OperatorCommand):
    help = "List, add, edit or remove the subnets the endpoint serves."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{list,add,edit,remove}")
        actions.add_parser("list", help="Print every subnet.")
        add = actions.add_parser("add", help="Register a subnet (then `metagraph sync` reads its miners).")
        add.add_argument("slug", help="Its name in commands and URLs: lowercase letters, digits and hyphens.")
        self.add_fields(add)
        add.add_argument("--disabled", action="store_true", help="Register it without syncing or serving it yet.")
        edit = actions.add_parser("edit", help="Change some of a subnet's fields.")
        edit.add_argument("slug")
        self.add_fields(edit)
        switch = edit.add_mutually_exclusive_group()
        switch.add_argument("--enable", dest="enabled", action="store_const", const="true")
        switch.add_argument("--disable", dest="enabled", action="store_const", const="false")
        remove = actions.add_parser("remove", help="Remove a subnet (its synced neurons stay in the database).")
        remove.add_argument("slug")

    @staticmethod
    def add_fields(parser) -> None:
        # Strings: the service reads them, so a bad value is "Error: …", not a usage dump.
        for option, field in OPTIONS.items():
            parser.add_argument(f"--{option.replace('_', '-')}", dest=option, help=SUBNET_FIELDS[field].help)

    def handle(self, *args, action: str, **options):
        if action == "list":
            self.print_list()
            return
        slug = options["slug"]
        try:
            if action == "remove":
                do_remove_subnet(slug)
                self.stdout.write(f"Removed subnet {slug}.")
                return
            fields = {field: options[option] for option, field in OPTIONS.items() if options[option] is not None}
            if action == "add":
                if options["disabled"]:
                    fields["enabled"] = "false"
                row = do_add_subnet(slug, fields)
                self.stdout.write(f"Added subnet {row.slug}: {row}. Run `manage.py metagraph sync` to read its miners.")
                return
            if options["enabled"] is not None:
                fields["enabled"] = options["enabled"]
            if not fields:
                raise OperatorError("nothing to change: give at least one option (see `subnets edit --help`)")
            row = do_edit_subnet(slug, fields)
            self.stdout.write(f"Edited subnet {row.slug}: {', '.join(sorted(fields))}.")
        except SubnetInputError as exc:
            flag = FLAGS.get(exc.param or "")
            raise SubnetInputError(f"{flag}: {exc}" if flag else str(exc), param=exc.param) from None

    def print_list(self) -> None:
        table = Table(*COLUMNS)
        for row in list_subnets():
            table.add_row(*subnet_row(row))
        self.console.print(table)
