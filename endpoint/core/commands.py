"""What every operator command shares: bad input (``InputError``) is one
clear line on stderr and exit code 1, and nothing has changed. Anything else
is a bug and shows its traceback."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console

from .errors import InputError


class OperatorCommand(BaseCommand):
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
