"""What every operator command shares: bad input is one clear line on
stderr and exit code 1, and nothing has changed."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console


class OperatorError(CommandError):
    pass


class OperatorCommand(BaseCommand):
    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (CommandError, ValueError) as exc:
            if options.get("traceback"):
                raise
            self.stderr.write(f"Error: {exc}")
            sys.exit(1)

    @property
    def console(self) -> Console:
        return Console(file=self.stdout, width=200)
