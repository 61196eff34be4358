"""`manage.py metagraph sync | show`: pull the subnet's metagraph from the
configured source into the database, and look at what the endpoint serves."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from rich.table import Table
from rich.text import Text

from endpoint.core.commands import OperatorCommand
from endpoint.network.metagraph import Directory, NeuronInfo, load_directory, sync_metagraph


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
    help = "Sync the subnet's metagraph from its source, or show the synced neurons."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{sync,show}")
        actions.add_parser("sync", help="Read the metagraph (chain or file, see `config`) into the database.")
        show = actions.add_parser("show", help="Print the synced neurons.")
        show.add_argument("--serving", action="store_true", help="Only neurons that are active and serve an axon.")

    def handle(self, *args, action: str, **options):
        if action == "sync":
            self.handle_sync()
        else:
            self.handle_show(serving_only=options["serving"])

    def handle_sync(self) -> None:
        r = sync_metagraph()
        self.stdout.write(
            f"Synced metagraph: network {r.network}, netuid {r.netuid}, block {r.block}, {r.neurons} neurons "
            f"({r.created} created, {r.updated} updated, {r.deactivated} deactivated)."
        )

    def handle_show(self, *, serving_only: bool) -> None:
        # Straight from the database: the operator wants what is stored now,
        # not this process's cached copy.
        view = load_directory()
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
