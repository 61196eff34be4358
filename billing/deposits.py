"""TAO deposits: each user's deposit address (derived from the operator's
seed, only the public address kept), the rate, and the scan that records
transfers to those addresses and credits each once, through the keys ledger,
when its block is final. The seed is decrypted only to derive an address and
never logged, printed or returned."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from chat.services import chat_account
from endpoint.core.errors import BillingInputError
from endpoint.core.models import EndpointConfig
from keys.credits import do_book_payment
from keys.models import CreditEntry

from . import tao_chain
from .models import RAO_PER_TAO, Deposit, DepositAddress, TaoRate

log = logging.getLogger(__name__)

# A first scan, or one far behind, reads at most this many blocks (about 20
# minutes of finney's 12 s blocks); beat's next tick goes on from there.
MAX_BLOCKS_PER_SCAN = 100


def derivation_path(index: int) -> str:
    # Hard derivation: a leaked address (or all of them) says nothing of the seed or its siblings.
    return f"//deposit//{index}"


def _derive(seed: str, index: int) -> str:
    from bittensor.sp_core import Keypair

    try:
        return Keypair.create_from_uri(seed + derivation_path(index)).ss58_address
    except ValueError:
        # The SDK's message names the problem, never the phrase; ours says less still.
        raise BillingInputError("That is not a valid seed phrase (BIP-39 mnemonic).") from None


# --- the operator's settings -----------------------------------------------------------


def do_set_seed(seed: str) -> None:
    """Store the deposit seed, encrypted. Refused once addresses were handed
    out: a new seed would strand deposits sent to the old addresses."""
    seed = " ".join(seed.split())
    if not seed:
        raise BillingInputError("No seed given.")
    _derive(seed, 0)  # refuses a phrase that isn't one
    with transaction.atomic():
        rate = TaoRate.objects.select_for_update().get(pk=TaoRate.load().pk)
        if DepositAddress.objects.exists():
            raise BillingInputError(
                "Deposit addresses were already given to users from the stored seed; it can't be replaced."
            )
        rate.seed = seed
        rate.save()
    log.info("TAO deposit seed stored")


def _whole(value: object, name: str, *, low: int = 0) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) < low:
        raise BillingInputError(f"{name} must be a whole number from {low}.")
    return int(text)


def parse_tao(value: object) -> int:
    """A TAO amount as typed (``0.5``) in rao."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BillingInputError("The minimum must be an amount of TAO, like 0.1.") from None
    rao = amount * RAO_PER_TAO
    if not amount.is_finite() or amount < 0 or rao != rao.to_integral_value():
        raise BillingInputError("The minimum must be an amount of TAO from 0, with at most 9 decimals.")
    return int(rao)


def do_set_rate(*, credits_per_tao: object = None, minimum_tao: object = None, confirmations: object = None) -> TaoRate:
    """Change what a TAO buys, the smallest deposit credited, and how deep a deposit must be."""
    with transaction.atomic():
        rate = TaoRate.objects.select_for_update().get(pk=TaoRate.load().pk)
        if credits_per_tao is not None:
            rate.credits_per_tao = _whole(credits_per_tao, "Credits per TAO")
        if minimum_tao is not None:
            rate.minimum_rao = parse_tao(minimum_tao)
        if confirmations is not None:
            rate.confirmations = _whole(confirmations, "Confirmations", low=1)
        rate.save()
    return rate


# --- users' addresses ------------------------------------------------------------------


def deposit_address(user) -> DepositAddress | None:
    """The user's deposit address, derived on first use; None while deposits are off."""
    existing = DepositAddress.objects.filter(user=user).first()
    if existing is not None:
        return existing
    rate = TaoRate.load()
    if not rate.enabled:
        return None
    index = user.pk  # stable and unique, so the operator can re-derive any address from the seed
    address = _derive(rate.seed, index)
    try:
        with transaction.atomic():
            return DepositAddress.objects.create(user=user, index=index, address=address)
    except IntegrityError:  # two first page loads at once
        return DepositAddress.objects.get(user=user)


# --- scanning the chain ----------------------------------------------------------------


@dataclass(frozen=True)
class ScanResult:
    head: int
    final: int  # deposits up to this block are final
    blocks: int
    seen: int
    credited: int

    def __str__(self) -> str:
        return (
            f"read {self.blocks} blocks (head {self.head}, final up to {self.final}): "
            f"{self.seen} deposits seen, {self.credited} credited"
        )


def scan_deposits(*, network: str | None = None, after: int | None = None, substrate=None) -> ScanResult | None:
    """Read the blocks since the last scan and record the transfers to our
    addresses: pending until their block is ``confirmations`` deep and
    finalized, then credited once. ``after`` rescans from a block (already
    credited deposits stay as they are). None while deposits are off."""
    rate = TaoRate.load()
    if not rate.enabled:
        return None
    start = rate.scanned_to if after is None else after
    network = network or EndpointConfig.load().network
    read = tao_chain.run(
        tao_chain.read_chain(network, start, MAX_BLOCKS_PER_SCAN, MAX_BLOCKS_PER_SCAN, substrate=substrate)
    )
    final = min(read.finalized, read.head - rate.confirmations, read.last)
    recipients = {t.recipient for t in read.transfers}
    ours = dict(DepositAddress.objects.filter(address__in=recipients).values_list("address", "pk"))
    seen = credited = 0
    for transfer in read.transfers:
        if transfer.recipient not in ours:
            continue
        seen += 1
        credited += _record(rate, ours[transfer.recipient], transfer, final=transfer.block_number <= final)
    if final >= read.first:
        _drop_vanished(read, final)
    # Where the next scan goes on from: after the last final block read, or,
    # with none final yet, from where this one started.
    mark = max(final, read.first - 1)
    # Conditional, so two scans at once, or a rescan, never move the mark backwards.
    behind = Q(scanned_to=rate.scanned_to) if after is None else Q(scanned_to__lt=mark) | Q(scanned_to=None)
    TaoRate.objects.filter(behind, pk=rate.pk).update(scanned_to=mark, scanned_at=timezone.now())
    result = ScanResult(read.head, final, max(0, read.last - read.first + 1), seen, credited)
    log.info("TAO deposits scan on %s: %s", network, result)
    return result


def _record(rate: TaoRate, address_id: int, transfer: tao_chain.Transfer, *, final: bool) -> int:
    """Record a transfer once; credit it once if ``final``. Returns 1 if credited now."""
    place = {
        "block_number": transfer.block_number,
        "extrinsic_index": transfer.extrinsic_index,
        "event_index": transfer.event_index,
    }
    facts = {
        "block_hash": transfer.block_hash,
        "sender": transfer.sender,
        "amount_rao": transfer.amount_rao,
        "address_id": address_id,
    }
    with transaction.atomic():
        deposit, created = Deposit.objects.select_for_update().get_or_create(**place, defaults=facts)
        if not created and deposit.status in (Deposit.PENDING, Deposit.DROPPED):
            # Still open: the block may have been replaced by a fork since it was seen.
            for name, value in facts.items():
                setattr(deposit, name, value)
            deposit.status = Deposit.PENDING
        if deposit.status != Deposit.PENDING:
            return 0  # credited or too small already: a replayed scan changes nothing
        address = DepositAddress.objects.select_related("user").get(pk=address_id)
        deposit.user = address.user
        deposit.credits = rate.credits_for(transfer.amount_rao)
        newly = 0
        if transfer.amount_rao < rate.minimum_rao or deposit.credits == 0:
            deposit.status = Deposit.TOO_SMALL
        elif final:
            key = chat_account(address.user).key
            reason = f"TAO deposit {deposit.amount} at block {transfer.block_number}"
            if not do_book_payment(key.pk, deposit.credits, CreditEntry.DEPOSIT, reason=reason, actor="tao"):
                log.warning("deposit at block %s: the user's balance is unlimited", transfer.block_number)
            deposit.key, deposit.status, deposit.credited_at, newly = key, Deposit.CREDITED, timezone.now(), 1
        deposit.save()
    return newly


def _drop_vanished(read: tao_chain.ChainRead, final: int) -> None:
    """Pending deposits of blocks now final that the final chain doesn't have (a fork's)."""
    kept = {(t.block_number, t.extrinsic_index, t.event_index) for t in read.transfers if t.block_number <= final}
    for deposit in Deposit.objects.filter(
        status=Deposit.PENDING, block_number__gte=read.first, block_number__lte=final
    ):
        if (deposit.block_number, deposit.extrinsic_index, deposit.event_index) not in kept:
            Deposit.objects.filter(pk=deposit.pk, status=Deposit.PENDING).update(status=Deposit.DROPPED)
