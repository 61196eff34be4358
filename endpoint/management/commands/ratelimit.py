"""`manage.py ratelimit [-k KEY] add TIMES SECONDS | delete INDEX | list` and
`ratelimit enable | disable | status`: the original `btvep ratelimit`.

Global rules apply to every key without rules of its own; a key's own rules
replace them. Changes take effect within the config cache interval, without
a restart. Numbers arrive as text and are read here, so a bad one is the
operators' usual "Error: …" line and exit code 1.
"""

from __future__ import annotations

import argparse
import asyncio

from django.conf import settings
from rich.table import Table

from endpoint.core.commands import OperatorCommand
from endpoint.core.config import REDIS_URL_POINTER
from endpoint.core.errors import OperatorError
from endpoint.core.models import EndpointConfig
from endpoint.ratelimits import close_limiter, limiter_health
from keys.models import ApiKey
from keys.rate_limits import do_add_rate_limit, do_delete_rate_limit, do_set_rate_limiting, list_rate_limits
from keys.services import find_key

KEY_HELP = "The API key (id, prefix or the key itself) whose own rules to use; without it, the global rules."
KEYED_ACTIONS = ("add", "delete", "list")


def whole_number(name: str, text: str, minimum: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise OperatorError(f"{name} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise OperatorError(f"{name} must be at least {minimum}, got {value}")
    return value


def describe(key: ApiKey) -> str:
    return f"key {key.pk} ({key.prefix}…)"


class Command(OperatorCommand):
    help = "Global and per-key rate limits, and switching rate limiting on and off."

    def add_arguments(self, parser):
        parser.add_argument("-k", "--key", help=KEY_HELP)
        actions = parser.add_subparsers(
            dest="action", required=True, metavar="{add,delete,list,enable,disable,status,set-redis-url}"
        )
        # -k is also accepted after add/delete/list, as the original allowed;
        # SUPPRESS keeps a sub-command from erasing a -k given before it.
        key_after = {"dest": "key", "default": argparse.SUPPRESS, "help": KEY_HELP}

        add = actions.add_parser("add", help="Add a rule: at most TIMES requests per SECONDS.")
        add.add_argument("-k", "--key", **key_after)
        add.add_argument("times", help="How many requests to allow in the period.")
        add.add_argument("seconds", help="The period in seconds.")

        delete = actions.add_parser("delete", help="Delete the rule at INDEX (from 0, as `list` shows).")
        delete.add_argument("-k", "--key", **key_after)
        delete.add_argument("index", help="The rule's index, from 0.")

        list_ = actions.add_parser("list", help="Show the rules in force.")
        list_.add_argument("-k", "--key", **key_after)

        actions.add_parser("enable", help="Turn rate limiting on.")
        actions.add_parser("disable", help="Turn rate limiting off.")
        actions.add_parser("status", help="Whether rate limiting is on and Redis answers.")
        # btvep's command, kept so its habit gets a pointer instead of "invalid choice".
        redis_url = actions.add_parser("set-redis-url", help="Not here: Redis is set by the REDIS_URL environment.")
        redis_url.add_argument("url", nargs="?", help="Ignored: set REDIS_URL instead.")

    def handle(self, *args, action: str, key: str | None = None, **options):
        if key is not None and action not in KEYED_ACTIONS:
            raise OperatorError(f"-k/--key applies to add, delete and list, not to {action}")
        api_key = find_key(key) if key is not None else None
        if action == "add":
            self.add(api_key, options["times"], options["seconds"])
        elif action == "delete":
            self.delete(api_key, options["index"])
        elif action == "list":
            self.show(api_key)
        elif action in ("enable", "disable"):
            do_set_rate_limiting(action == "enable")
            self.stdout.write(f"Rate limiting {action}d.")
        elif action == "set-redis-url":
            raise OperatorError(REDIS_URL_POINTER)
        else:
            self.status()

    def add(self, key: ApiKey | None, times: str, seconds: str) -> None:
        rule = (whole_number("TIMES", times, 1), whole_number("SECONDS", seconds, 1))
        rules = do_add_rate_limit(*rule, key=key)
        whose = f"to {describe(key)}" if key else "to the global rules"
        self.stdout.write(f"Added {rule[0]} requests per {rule[1]} seconds {whose} (index {len(rules) - 1}).")

    def delete(self, key: ApiKey | None, index: str) -> None:
        position = whole_number("INDEX", index, 0)
        before = list_rate_limits(key)
        do_delete_rate_limit(position, key=key)
        removed = before.rules[position]
        whose = f"from {describe(key)}" if key else "from the global rules"
        self.stdout.write(f"Deleted {removed['times']} requests per {removed['seconds']} seconds {whose}.")

    def show(self, key: ApiKey | None) -> None:
        listing = list_rate_limits(key)
        scope = describe(key) if listing.own else "global"
        if key is None:
            title = "Global rate limits"
        elif listing.own:
            title = f"Rate limits of {describe(key)}"
        else:
            title = f"{describe(key)} has no rules of its own; the global ones apply"
        if not EndpointConfig.load().rate_limiting_enabled:
            self.stdout.write("Rate limiting is disabled: these rules are not enforced (`ratelimit enable`).")
        if not listing.rules:
            self.stdout.write(f"{title}: none.")
            return
        # The title goes above the table, not in it: rich would wrap it to the table's width.
        self.stdout.write(f"{title}:")
        table = Table("index", "times", "seconds", "applies as")
        for index, rule in enumerate(listing.rules):
            table.add_row(str(index), str(rule["times"]), str(rule["seconds"]), scope)
        self.console.print(table)

    def status(self) -> None:
        enabled = EndpointConfig.load().rate_limiting_enabled
        self.stdout.write(f"Rate limiting is {'enabled' if enabled else 'disabled'}.")
        healthy, detail = asyncio.run(self.probe())
        if not settings.REDIS_URL:
            self.stdout.write(f"Counting: {detail}; limits are not shared between processes.")
        elif healthy:
            self.stdout.write(f"{detail}.")
        else:
            fail_closed = settings.RATE_LIMIT_FAIL_CLOSED
            fallback = "refused (RATE_LIMIT_FAIL_CLOSED)" if fail_closed else "served without limits"
            self.stdout.write(f"{detail}; requests are {fallback}.")

    @staticmethod
    async def probe() -> tuple[bool, str]:
        try:
            return await limiter_health()
        finally:
            await close_limiter()
