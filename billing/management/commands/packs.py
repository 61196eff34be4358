"""`manage.py packs create|list|enable|disable`: the credit packs users can buy."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from billing.models import CreditPack
from billing.packs import do_create_pack, do_set_pack_active, find_pack
from endpoint.core.commands import OperatorCommand


class Command(OperatorCommand):
    help = "Manage the credit packs on sale: create, list, enable, disable."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{create,list,enable,disable}")
        create = actions.add_parser("create", help="Put a new pack on sale.")
        create.add_argument("-n", "--name", required=True)
        create.add_argument("-c", "--credits", required=True, help="Credits the pack gives.")
        create.add_argument("-p", "--price", required=True, help="Its price, e.g. 4.99.")
        create.add_argument("--currency", default="usd", help="Three-letter code (default usd).")
        actions.add_parser("list", help="List every pack, on sale or not.")
        for name, what in (("enable", "Put a pack back on sale."), ("disable", "Take a pack off sale.")):
            actions.add_parser(name, help=what).add_argument("id", help="The pack's id.")

    def handle(self, *args, action: str, **options):
        if action == "create":
            pack = do_create_pack(options["name"], options["credits"], options["price"], options["currency"])
            self.stdout.write(f"Created pack {pack.pk}: {pack}")
        elif action == "list":
            self._list()
        else:
            pack = do_set_pack_active(find_pack(options["id"]), action == "enable")
            self.stdout.write(f"Pack {pack.pk} is {'on sale' if pack.active else 'off sale'}.")

    def _list(self) -> None:
        table = Table("id", "name", "credits", "price", "on sale")
        for pack in CreditPack.objects.order_by("pk"):
            table.add_row(str(pack.pk), Text(pack.name), str(pack.credits), pack.price, "yes" if pack.active else "no")
        self.console.print(table)
