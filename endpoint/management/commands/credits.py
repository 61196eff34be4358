"""`manage.py credits audit`: is every limited key's balance the sum of its
ledger? Exit code 1 when one is not. `manage.py credits sweep`: give back
now the credits of calls whose server died mid-call (beat does it every
minute, and `start` once as it boots)."""

from __future__ import annotations

import sys

from rich.table import Table

from endpoint.core.commands import OperatorCommand
from keys.credits import audit_credits, open_holds
from logs.services import sweep_credits


class Command(OperatorCommand):
    help = "Check the credit ledger against the balances, or release abandoned holds."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{audit,sweep}")
        actions.add_parser("audit", help="Compare every limited key's balance with its ledger; exit 1 on a difference.")
        actions.add_parser("sweep", help="Release holds past their deadline that no call settled.")

    def handle(self, *args, action: str, **options):
        if action == "sweep":
            released, forwarded = sweep_credits()
            self.stdout.write(f"released {len(released)} hold(s), {sum(h.credits for h in released)} credit(s)")
            if forwarded:
                self.stdout.write(f"moved {sum(n for *_, n in forwarded)} late refund credit(s) of revoked keys")
            return
        differences = audit_credits()
        holds, overdue = open_holds()
        self.stdout.write(f"open holds: {holds} ({overdue} past their deadline)")
        if not differences:
            self.stdout.write("ledger and balances agree")
            return
        table = Table("key", "prefix", "balance", "ledger sum", "difference")
        for line in differences:
            table.add_row(
                str(line.key_id), line.prefix, str(line.balance), str(line.ledger), f"{line.balance - line.ledger:+d}"
            )
        self.console.print(table)
        self.stderr.write(f"Error: {len(differences)} key(s) whose balance is not the sum of their ledger")
        sys.exit(1)
