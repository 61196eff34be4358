"""`manage.py config get [NAME]` and `config set NAME VALUE`: the original
`btvep config`. Secrets (the hotkey mnemonic, the OpenAI key) are only ever
shown masked."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table
from rich.text import Text

from endpoint.core.commands import OperatorCommand, RawEpilogFormatter
from endpoint.core.config import FIELDS, config_values, do_set_config, hotkey_address
from endpoint.core.errors import OperatorError


def shown(value: Any) -> str:
    """A setting as text an operator could type back into `config set`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def settings_help() -> str:
    """Every setting with what it means and the values it takes, from the one table."""
    width = max(map(len, FIELDS))
    lines = [f"  {name:<{width}}  {field.help}" for name, field in FIELDS.items()]
    return "settings:\n" + "\n".join(lines)


class Command(OperatorCommand):
    help = "Read and change the endpoint's runtime settings."

    def create_parser(self, prog_name, subcommand, **kwargs):
        return super().create_parser(
            prog_name, subcommand, epilog=settings_help(), formatter_class=RawEpilogFormatter, **kwargs
        )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{get,set}")

        get = actions.add_parser("get", help="Print every setting, or one.")
        get.add_argument("name", nargs="?", help=f"One of: {', '.join(FIELDS)}.")

        set_ = actions.add_parser(
            "set", help="Change a setting.", epilog=settings_help(), formatter_class=RawEpilogFormatter
        )
        set_.add_argument("name", help="The setting's name (listed below).")
        # nargs="+": an unquoted mnemonic arrives as many words; taking them all
        # keeps argparse from echoing the surplus ones in an "unrecognized
        # arguments" error.
        set_.add_argument("value", nargs="+", help="The new value (JSON for global_rate_limits).")

    def handle(self, *args, action: str, name: str | None, **options):
        if action == "set":
            self.set_value(name, " ".join(options["value"]))
        elif name is None:
            self.print_all()
        else:
            self.print_one(name)

    def print_all(self) -> None:
        table = Table("name", "value")
        for name, value in config_values().items():
            table.add_row(Text(name), Text(shown(value)))
        self.console.print(table)

    def print_one(self, name: str) -> None:
        values = config_values()
        if name not in values:
            raise OperatorError(f"unknown config name {name!r}; known: {', '.join(values)}")
        self.stdout.write(shown(values[name]))

    def set_value(self, name: str, raw: str) -> None:
        value = do_set_config(name, raw)  # masked when the setting is a secret
        self.stdout.write(f"{name} = {shown(value)}")
        if name == "hotkey_mnemonic" and raw.strip():
            # The address is how an operator checks it is the hotkey they meant.
            self.stdout.write(f"hotkey ss58 address: {hotkey_address(raw)}")
