"""`manage.py tao show|seed|rate|scan`: TAO deposits. The seed is write-only:
read from a prompt (or stdin when piped), stored encrypted, never printed."""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import CommandError
from rich.table import Table

from billing import deposits, tao_chain
from billing.models import Deposit, DepositAddress, TaoRate
from endpoint.core.commands import OperatorCommand
from endpoint.core.errors import BillingInputError


class Command(OperatorCommand):
    help = "TAO deposits: show the settings, store the deposit seed, set the rate, scan the chain now."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{show,seed,rate,scan}")
        actions.add_parser("show", help="The rate, whether a seed is stored, the scan's progress.")
        actions.add_parser(
            "seed", help="Store the deposit seed (a BIP-39 mnemonic), from a prompt or stdin; it is never shown."
        )
        rate = actions.add_parser("rate", help="Set what a TAO buys, the smallest deposit, the confirmations.")
        rate.add_argument("-c", "--credits-per-tao", help="Credits one TAO buys (0 turns deposits off).")
        rate.add_argument("-m", "--minimum", help="Smallest deposit credited, in TAO (e.g. 0.1).")
        rate.add_argument("--confirmations", help="Blocks on top of a deposit before it is credited.")
        scan = actions.add_parser("scan", help="Read new blocks now (beat does it every minute).")
        scan.add_argument("--from", dest="from_block", help="Rescan from this block (nothing is credited twice).")

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(options)

    def _show(self, options) -> None:
        rate = TaoRate.load()
        table = Table("setting", "value")
        table.add_row("deposits", "on" if rate.enabled else "off (needs a seed and credits per TAO above 0)")
        table.add_row("seed", "stored (encrypted)" if rate.has_seed else "not set")
        table.add_row("credits per TAO", str(rate.credits_per_tao))
        table.add_row("minimum deposit", rate.minimum)
        table.add_row("confirmations", str(rate.confirmations))
        table.add_row("addresses given", str(DepositAddress.objects.count()))
        table.add_row("final up to block", "never scanned" if rate.scanned_to is None else str(rate.scanned_to))
        for status, label in Deposit.STATUSES:
            table.add_row(f"deposits {label}", str(Deposit.objects.filter(status=status).count()))
        self.console.print(table)

    def _seed(self, options) -> None:
        if sys.stdin.isatty():
            seed = getpass.getpass("Deposit seed (not echoed): ")
        else:
            seed = sys.stdin.readline()
        deposits.do_set_seed(seed)
        self.stdout.write("Deposit seed stored, encrypted. Each user's address is <seed>//deposit//<user id>.")

    def _rate(self, options) -> None:
        values = {
            "credits_per_tao": options["credits_per_tao"],
            "minimum_tao": options["minimum"],
            "confirmations": options["confirmations"],
        }
        if all(value is None for value in values.values()):
            raise BillingInputError("Give at least one of --credits-per-tao, --minimum, --confirmations.")
        rate = deposits.do_set_rate(**values)
        self.stdout.write(
            f"1 TAO buys {rate.credits_per_tao} credits; deposits from {rate.minimum} "
            f"are credited after {rate.confirmations} confirmations."
        )

    def _scan(self, options) -> None:
        after = options["from_block"]
        if after is not None:
            if not str(after).isdigit() or int(after) < 1:
                raise BillingInputError("--from takes a block number from 1.")
            after = int(after) - 1
        try:
            result = deposits.scan_deposits(after=after)
        except tao_chain.ChainUnreachable as exc:  # an outage, not a bug: one line, exit 1
            raise CommandError(str(exc)) from None
        self.stdout.write("TAO deposits are off: nothing scanned." if result is None else f"Scanned: {result}.")
