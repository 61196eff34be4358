"""What every operator command shares: bad input (``InputError``) is one
clear line on stderr and exit code 1, and nothing has changed. Anything else
is a bug and shows its traceback."""

from __future__ import annotations

import argparse
import sys

import django
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from rich.console import Console

from .errors import InputError
from .version import VERSION


class RawEpilogFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's help layout, with the epilog's own line breaks kept (a table)."""


class OperatorCommand(BaseCommand):
    def get_version(self) -> str:
        """What `--version` prints on every operator command, as `btvep --version` did."""
        return f"validator-endpoint {VERSION} (Django {django.get_version()})"

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (CommandError, InputError) as exc:
            if options.get("traceback"):
                raise
            self.stderr.write(f"Error: {exc}")
            sys.exit(1)

    @property
    def console(self) -> Console:
        return Console(file=self.stdout, width=200)
