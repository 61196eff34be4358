"""`manage.py metagraph sync | show`: pull every enabled subnet's metagraph
from its source into the database, and look at what the endpoint serves."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from rich.table import Table
from rich.text import Text

from endpoint.core.commands import OperatorCommand
from endpoint.core.models import CHAT_SUBNET
from endpoint.core.subnets import find_subnet
from endpoint.network.metagraph import (
    Directory,
    NeuronInfo,
    SubnetSync,
    load_directory,
    sync_subnet,
    sync_subnets,
)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _age(moment: datetime) -> str:
    seconds = int((timezone.now() - moment).total_seconds())
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def header(view: Directory) -> str:
    if view.synced_at is None:
        return f"Metagraph of netuid {view.netuid}: never synced (run `manage.py metagraph sync`)."
    synced = view.synced_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"Metagraph of netuid {view.netuid} on {view.network}: block {view.block}, "
        f"synced at {synced} ({_age(view.synced_at)}), {len(view.by_uid)} neurons, {len(view.ranked)} serving."
    )


def neuron_row(n: NeuronInfo) -> list[Text]:
    # Text, not str: rich would read "[...]" (an IPv6 axon) as markup.
    cells = [
        n.uid,
        n.hotkey,
        n.axon or "-",
        f"{n.incentive:.4f}",
        f"{n.trust:.4f}",
        f"{n.stake:,.3f}",
        _yes_no(n.validator_permit),
        _yes_no(n.active),
        _yes_no(n.serving),
    ]
    return [Text(str(cell)) for cell in cells]


class Command(OperatorCommand):
    help = "Sync the subnets' metagraphs from their sources, or show a subnet's synced neurons."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{sync,show}")
        sync = actions.add_parser(
            "sync", help="Read every enabled subnet's metagraph (chain or file, see `subnets`) into the database."
        )
        sync.add_argument("--subnet", help="Only this subnet (its slug, see `subnets list`).")
        show = actions.add_parser("show", help="Print a subnet's synced neurons.")
        show.add_argument("--subnet", default=CHAT_SUBNET, help="The subnet's slug (default: chat).")
        show.add_argument("--serving", action="store_true", help="Only neurons that are active and serve an axon.")

    def handle(self, *args, action: str, **options):
        if action == "sync":
            self.handle_sync(options["subnet"])
        else:
            self.handle_show(options["subnet"], serving_only=options["serving"])

    def handle_sync(self, slug: str | None) -> None:
        if slug is not None:
            subnet = find_subnet(slug)
            outcomes = [SubnetSync(subnet, result=sync_subnet(subnet))]
        else:
            outcomes = sync_subnets()
        for outcome in outcomes:
            r, which = outcome.result, outcome.subnet.slug
            # The chat subnet's line reads as it did when it was the only one.
            of = "" if which == CHAT_SUBNET else f" of {which}"
            if r is None:
                self.stderr.write(f"Error: {outcome.error}" if not of else f"Error: subnet {which}: {outcome.error}")
                continue
            self.stdout.write(
                f"Synced metagraph{of}: network {r.network}, netuid {r.netuid}, block {r.block}, {r.neurons} neurons "
                f"({r.created} created, {r.updated} updated, {r.deactivated} deactivated)."
            )
        if any(outcome.error is not None for outcome in outcomes):
            raise SystemExit(1)

    def handle_show(self, slug: str, *, serving_only: bool) -> None:
        # Straight from the database: the operator wants what is stored now,
        # not this process's cached copy.
        view = load_directory(find_subnet(slug))
        self.stdout.write(header(view))
        neurons = sorted(view.by_uid.values(), key=lambda n: n.uid)
        if serving_only:
            neurons = [n for n in neurons if n.serving]
        if not neurons:
            self.stdout.write("No serving neurons." if serving_only and not view.empty else "No neurons.")
            return
        table = Table("uid", "hotkey", "axon", "incentive", "trust", "stake", "permit", "active", "serving")
        for n in neurons:
            table.add_row(*neuron_row(n))
        self.console.print(table)
