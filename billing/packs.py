"""The credit packs on sale, as operators write them (the `packs` command;
the admin writes the same fields through its form): a price read as people
write it (``5``, ``4.99``) and kept in the currency's smallest unit."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from endpoint.core.errors import BillingInputError

from .models import ZERO_DECIMAL, CreditPack

MAX_CREDITS = 10**15  # as keys: far above any balance, far below the column's limit
MAX_AMOUNT = 2**31 - 1


def parse_credits(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise BillingInputError(f"credits must be a whole number; got {text!r}") from None
    if not 1 <= value <= MAX_CREDITS:
        raise BillingInputError(f"credits must be from 1 to {MAX_CREDITS}")
    return value


def parse_currency(text: str) -> str:
    value = str(text).strip().lower()
    if len(value) != 3 or not value.isascii() or not value.isalpha():
        raise BillingInputError(f"a currency is a three-letter code like usd or eur; got {text!r}")
    return value


def parse_price(text: str, currency: str) -> int:
    """``text`` in ``currency``'s units (4.99 USD) as its smallest unit (499)."""
    try:
        units = Decimal(str(text).strip())
    except InvalidOperation:
        raise BillingInputError(f"the price must be a number like 4.99; got {text!r}") from None
    amount = units if currency in ZERO_DECIMAL else units * 100
    if not units.is_finite() or amount != amount.to_integral_value():
        raise BillingInputError(f"{text} is not a price in {currency.upper()}: too many decimals")
    if not 1 <= amount <= MAX_AMOUNT:
        raise BillingInputError("the price must be above zero (and below 21 million units)")
    return int(amount)


def do_create_pack(name: str, credits: str, price: str, currency: str = "usd") -> CreditPack:
    name = " ".join(str(name).split())
    if not name or len(name) > CreditPack._meta.get_field("name").max_length:
        raise BillingInputError("a pack needs a name of at most 100 characters")
    currency = parse_currency(currency)
    return CreditPack.objects.create(
        name=name, credits=parse_credits(credits), amount=parse_price(price, currency), currency=currency
    )


def do_set_pack_active(pack: CreditPack, active: bool) -> CreditPack:
    """Put a pack on sale or take it off; payments already made keep their pack."""
    pack.active = active
    pack.save(update_fields=["active"])
    return pack


def find_pack(text: str) -> CreditPack:
    pack = CreditPack.objects.filter(pk=int(text)).first() if str(text).isdigit() else None
    if pack is None:
        raise BillingInputError(f"no credit pack with id {text!r} (see `manage.py packs list`)")
    return pack
