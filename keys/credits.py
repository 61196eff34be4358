"""The charge: credits held before a call, settled after it, given and taken
by operators, moved between a user's keys. Every movement is a row of the
key's ledger (``CreditEntry``) written in the same statement or transaction
as the balance it changes, so a limited key's balance is always the sum of
its ledger. Balances move in the database (conditional UPDATEs), never as
read-modify-write in Python, so concurrent calls can't overspend a key and
concurrent top-ups sum exactly.

A hold ends exactly once: settled by its call (with the request's log, in
one statement: ``settle_ctes``), or released whole by the sweeper once its
deadline has passed (``release_expired_holds``: a server that died mid-call
strands nothing)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from endpoint.core import asyncdb, errors
from endpoint.core.db import on_postgresql, run_db
from endpoint.core.errors import CreditsWouldGoNegative, KeyInputError, UnlimitedCredits
from endpoint.core.sql import column, columns, table

from .models import ApiKey, CreditEntry

log = logging.getLogger(__name__)


@dataclass
class Reservation:
    key_id: int
    held: int  # credits taken from the key; 0 for unlimited keys
    request_id: uuid.UUID = field(default_factory=uuid.uuid4)  # the call the hold is for


@dataclass(frozen=True)
class Settlement:
    """What a finished call owes its key: the hold given back beyond what
    was used, and the call counted. Applied once — alone (``settle_credits``)
    or in the same statement as the request's log (``logs.services``), so a
    charge and its log land together."""

    reservation: Reservation
    used: int
    miner_calls: int = 0

    @property
    def cost(self) -> int:
        """What the call cost: never more than was held (for an unlimited key, what it would have cost)."""
        used = max(0, self.used)
        return min(used, self.reservation.held) if self.reservation.held else used

    @property
    def refund(self) -> int:
        return self.reservation.held - self.cost if self.reservation.held else 0

    def params(self) -> list:
        """The parameters of ``settle_ctes`` (``credits + 0`` leaves an
        unlimited key's NULL as it is)."""
        r = self.reservation
        ended = [r.key_id, self.refund, r.request_id, r.request_id, r.held]
        settled = [self.refund, self.miner_calls, timezone.now(), r.key_id, r.held]
        return ended + settled


# The statements every API call runs, written once as SQL: compiling the
# ORM's filter().update(F()) cost more than the round trip itself (0.7 ms
# of 1.25 ms per call on the 2-core bench machine).
_TABLE = table(ApiKey)
_CREDITS = column(ApiKey, "credits")
_ID, _COUNT, _REQUESTS, _LAST_USED = (
    column(ApiKey, f) for f in ("id", "api_request_count", "request_count", "last_used_at")
)
_LEDGER = table(CreditEntry)
_ENDS = column(CreditEntry, "ends")
_HOLD_COLUMNS = columns(
    CreditEntry, ["key", "kind", "amount", "request_id", "expires_at", "actor", "reason", "created_at"]
)
_END_COLUMNS = columns(CreditEntry, ["key", "kind", "amount", "request_id", "ends", "actor", "reason", "created_at"])

# One statement: take the credits if the key has them and write the hold.
# Its result says whether it held, and whether the key is unlimited — read
# from the row, never from a cached copy of the key. The UPDATE's row lock
# and condition stop overspending; on PostgreSQL the statement also doesn't
# wait for the disk (the settlement after it flushes it with itself, or,
# with LOG_SYNCHRONOUS_COMMIT off, shares its fate).
_RESERVE_SQL = (
    f"WITH held AS (UPDATE {_TABLE} SET {_CREDITS} = {_CREDITS} - %s WHERE {_ID} = %s AND {_CREDITS} >= %s "
    f"RETURNING {_ID}), "
    f"entry AS (INSERT INTO {_LEDGER} ({_HOLD_COLUMNS}) "
    f"SELECT {_ID}, '{CreditEntry.HOLD}', -%s, %s, now() + %s * interval '1 second', '', '', now() FROM held) "
    # Whether the key is unlimited is looked up only when nothing was held.
    f"SELECT h.n, CASE WHEN h.n = 1 THEN false ELSE (SELECT {_CREDITS} IS NULL FROM {_TABLE} WHERE {_ID} = %s) END, "
    f"{asyncdb.ASYNC_COMMIT} FROM (SELECT count(*) AS n FROM held) AS h"
)


def settle_ctes(condition: str = "TRUE") -> str:
    """Two CTEs that settle a call where ``condition`` (SQL) holds: end the
    hold in the ledger (once: a hold the sweeper already released is not
    settled again) and apply it to the key. The log writer puts them in the
    statement that writes the request's log."""
    return (
        f"ended AS (INSERT INTO {_LEDGER} ({_END_COLUMNS}) "
        f"SELECT %s, '{CreditEntry.SETTLE}', %s, %s, %s, '', '', now() WHERE %s > 0 AND {condition} "
        f"ON CONFLICT ({_ENDS}) WHERE {_ENDS} IS NOT NULL DO NOTHING RETURNING 1), "
        f"settled AS (UPDATE {_TABLE} SET {_CREDITS} = {_CREDITS} + %s, "
        f"{_COUNT} = {_COUNT} + 1, {_REQUESTS} = {_REQUESTS} + %s, {_LAST_USED} = %s "
        f"WHERE {_ID} = %s AND {condition} AND (%s = 0 OR EXISTS (SELECT 1 FROM ended)) RETURNING 1)"
    )


SETTLE_SQL = f"WITH {settle_ctes()} SELECT count(*) FROM settled"


def _deadline_seconds(seconds: float | None) -> float:
    return (seconds or 0) + settings.HOLD_GRACE_SECONDS


def _reserved(key: ApiKey, n: int, row: tuple | None, request_id: uuid.UUID) -> Reservation:
    held, unlimited = (row[0], row[1]) if row else (0, None)
    if held == 1:
        return Reservation(key_id=key.pk, held=n, request_id=request_id)
    if unlimited:
        return Reservation(key_id=key.pk, held=0, request_id=request_id)
    if unlimited is None:  # the key is gone
        raise errors.APIKeyInvalid()
    raise errors.APIKeyNotEnoughCredits()


def reserve_credits(
    key: ApiKey, n: int, *, request_id: uuid.UUID | None = None, seconds: float | None = None
) -> Reservation:
    """Hold ``n`` credits of ``key`` for a call expected to end within
    ``seconds``, or raise NotEnoughCredits: one statement, so concurrent calls
    can't overspend."""
    request_id = request_id or uuid.uuid4()
    if n <= 0:
        return Reservation(key_id=key.pk, held=0, request_id=request_id)
    if not on_postgresql():
        return _reserve_with_the_orm(key, n, request_id, seconds)
    with connection.cursor() as cursor:
        cursor.execute(_RESERVE_SQL, _reserve_params(key, n, request_id, seconds))
        return _reserved(key, n, cursor.fetchone(), request_id)


async def areserve_credits(
    key: ApiKey, n: int, *, request_id: uuid.UUID | None = None, seconds: float | None = None
) -> Reservation:
    """``reserve_credits`` for async code (from the event loop when the server gave it a pool)."""
    request_id = request_id or uuid.uuid4()
    if n <= 0:
        return Reservation(key_id=key.pk, held=0, request_id=request_id)
    if not on_postgresql():
        return await run_db(_reserve_with_the_orm, key, n, request_id, seconds)
    row = await asyncdb.fetch_one(_RESERVE_SQL, _reserve_params(key, n, request_id, seconds))
    return _reserved(key, n, row, request_id)


def _reserve_params(key: ApiKey, n: int, request_id: uuid.UUID, seconds: float | None) -> list:
    return [n, key.pk, n, n, request_id, _deadline_seconds(seconds), key.pk]


def _reserve_with_the_orm(key: ApiKey, n: int, request_id: uuid.UUID, seconds: float | None) -> Reservation:
    with transaction.atomic():
        if ApiKey.objects.filter(pk=key.pk, credits__gte=n).update(credits=F("credits") - n):
            deadline = timezone.now() + timedelta(seconds=_deadline_seconds(seconds))
            CreditEntry.objects.create(
                key_id=key.pk, kind=CreditEntry.HOLD, amount=-n, request_id=request_id, expires_at=deadline
            )
            return Reservation(key_id=key.pk, held=n, request_id=request_id)
    credits = ApiKey.objects.filter(pk=key.pk).values_list("credits", flat=True)
    row = (0, credits[0] is None) if credits else None
    return _reserved(key, n, row, request_id)


def apply_settlement(settlement: Settlement) -> int:
    """Apply ``settlement`` on its own; returns the credits the call cost."""
    if on_postgresql():
        with connection.cursor() as cursor:
            cursor.execute(SETTLE_SQL, settlement.params())
        return settlement.cost
    r = settlement.reservation
    with transaction.atomic():
        if r.held:
            try:
                with transaction.atomic():
                    CreditEntry.objects.create(
                        key_id=r.key_id, kind=CreditEntry.SETTLE, amount=settlement.refund,
                        request_id=r.request_id, ends=r.request_id,
                    )  # fmt: skip
            except IntegrityError:
                return settlement.cost  # released already by the sweeper
        ApiKey.objects.filter(pk=r.key_id).update(
            credits=F("credits") + settlement.refund,
            api_request_count=F("api_request_count") + 1,
            request_count=F("request_count") + settlement.miner_calls,
            last_used_at=timezone.now(),
        )
    return settlement.cost


def settle_credits(reservation: Reservation, used: int, miner_calls: int = 0) -> int:
    """Give back what the reservation held beyond ``used``, and count the
    call on the key. Returns the credits the call cost."""
    return apply_settlement(Settlement(reservation, used, miner_calls))


# --- holds nobody settled ---------------------------------------------------------


@dataclass(frozen=True)
class ReleasedHold:
    key_id: int
    credits: int
    request_id: uuid.UUID
    held_at: datetime


def release_expired_holds(record=None, now=None) -> list[ReleasedHold]:
    """Give back every hold whose deadline has passed without its call
    settling it (the server died, or its log write failed): each in its own
    transaction with ``record(hold)`` (the log writer's record of the call),
    ended in the ledger once, so a call settling at the same moment and the
    sweeper can't both end it."""
    now = now or timezone.now()
    ended = CreditEntry.objects.filter(ends__isnull=False).values("ends")
    expired = (
        CreditEntry.objects.filter(kind=CreditEntry.HOLD, expires_at__lt=now)
        .exclude(request_id__in=ended)
        .values_list("key_id", "amount", "request_id", "created_at")
    )
    released = []
    for key_id, amount, request_id, held_at in list(expired):
        hold = ReleasedHold(key_id, -amount, request_id, held_at)
        try:
            with transaction.atomic():
                CreditEntry.objects.create(
                    key_id=key_id, kind=CreditEntry.RELEASE, amount=hold.credits, request_id=request_id,
                    ends=request_id, actor="sweeper", reason="hold past its deadline, never settled",
                )  # fmt: skip
                ApiKey.objects.filter(pk=key_id, credits__isnull=False).update(credits=F("credits") + hold.credits)
                if record is not None:
                    record(hold)
        except IntegrityError:
            continue  # its call settled it meanwhile
        released.append(hold)
        log.warning("released %s credits held on key %s for call %s, never settled", hold.credits, key_id, request_id)
    return released


@dataclass(frozen=True)
class AuditLine:
    key_id: int
    prefix: str
    balance: int
    ledger: int


def audit_credits() -> list[AuditLine]:
    """Every limited key whose balance is not the sum of its ledger (none, when all is well)."""
    sums = dict(CreditEntry.objects.values("key").annotate(total=Sum("amount")).values_list("key", "total"))
    keys = ApiKey.objects.filter(credits__isnull=False).values_list("pk", "prefix", "credits")
    return [
        AuditLine(pk, prefix, credits, sums.get(pk, 0)) for pk, prefix, credits in keys if credits != sums.get(pk, 0)
    ]


def open_holds(now=None) -> tuple[int, int]:
    """Holds not ended yet: (how many, how many of them past their deadline)."""
    now = now or timezone.now()
    ended = CreditEntry.objects.filter(ends__isnull=False).values("ends")
    holds = CreditEntry.objects.filter(kind=CreditEntry.HOLD).exclude(request_id__in=ended)
    return holds.count(), holds.filter(expires_at__lt=now).count()


# --- operators and users --------------------------------------------------------------


def ledger_balance(key: ApiKey) -> int:
    return CreditEntry.objects.filter(key_id=key.pk).aggregate(total=Sum("amount"))["total"] or 0


def record_entry(key: ApiKey, kind: str, amount: int, *, actor: str = "", reason: str = "") -> None:
    """Write a movement the caller has just applied to the key's balance, in its transaction."""
    if amount:
        CreditEntry.objects.create(key_id=key.pk, kind=kind, amount=amount, actor=actor[:150], reason=reason[:500])


def record_new_balance(key: ApiKey, credits: int | None, *, actor: str = "", reason: str = "") -> None:
    """A balance set outright (a key created or edited with a number of
    credits): the ledger gets the difference, so it sums to the new balance."""
    if credits is not None:
        record_entry(key, CreditEntry.ADJUST, credits - ledger_balance(key), actor=actor, reason=reason)


def do_adjust_credits(key: ApiKey, delta: int, *, reason: str = "", actor: str = "") -> ApiKey:
    """Add ``delta`` credits to ``key`` (take them when negative) in one
    conditional UPDATE, so concurrent top-ups and charges sum exactly and the
    balance never goes below zero; the ledger records who and why."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise KeyInputError("the change in credits must be a whole number other than 0")
    qs = ApiKey.objects.filter(pk=key.pk, credits__isnull=False)
    if delta < 0:
        qs = qs.filter(credits__gte=-delta)
    with transaction.atomic():
        changed = qs.update(credits=F("credits") + delta)
        if changed:
            kind = CreditEntry.TOPUP if delta > 0 else CreditEntry.ADJUST
            record_entry(key, kind, delta, actor=actor or "unknown", reason=reason)
    if not changed:
        # Nothing changed; say why (the row can only be gone, unlimited or short).
        balance = ApiKey.objects.filter(pk=key.pk).values_list("credits", flat=True).first()
        if balance is None:
            if not ApiKey.objects.filter(pk=key.pk).exists():
                raise ApiKey.DoesNotExist(f"API key {key.pk} no longer exists")
            raise UnlimitedCredits("the key has unlimited credits; set a number of credits first")
        raise CreditsWouldGoNegative(f"the key has {balance} credits; taking {-delta} would leave it below zero")
    key.refresh_from_db(fields=["credits"])
    log.info(
        "credits %+d on key %s (%s…) by %s, now %s; reason: %s",
        delta,
        key.pk,
        key.prefix,
        actor or "unknown",
        key.credits,
        reason or "-",
    )
    return key


def do_book_payment(key_id: int, delta: int, kind: str, *, reason: str, actor: str = "stripe") -> bool:
    """Credits a payment (by card or a TAO deposit) brings (``delta`` > 0) or
    a refund or dispute takes back, in the caller's transaction. Unlike an operator's adjustment, this
    may leave the balance below zero (the credits may be spent already): the
    key then answers 402 until topped up. False for an unlimited or missing key."""
    changed = ApiKey.objects.filter(pk=key_id, credits__isnull=False).update(credits=F("credits") + delta)
    if changed and delta:
        CreditEntry.objects.create(key_id=key_id, kind=kind, amount=delta, actor=actor, reason=reason[:500])
    return bool(changed)


def do_transfer_credits(source: ApiKey, target: ApiKey, n: int, *, reason: str = "") -> None:
    """Move ``n`` credits from ``source`` to ``target`` (both limited), in the
    caller's transaction; NotEnoughCredits if ``source`` is short."""
    if n <= 0:
        return
    if not ApiKey.objects.filter(pk=source.pk, credits__gte=n).update(credits=F("credits") - n):
        raise errors.APIKeyNotEnoughCredits()
    ApiKey.objects.filter(pk=target.pk, credits__isnull=False).update(credits=F("credits") + n)
    record_entry(source, CreditEntry.TRANSFER, -n, reason=reason or f"to key {target.pk}")
    record_entry(target, CreditEntry.TRANSFER, n, reason=reason or f"from key {source.pk}")


def forward_late_refunds() -> list[tuple[int, int, int]]:
    """Move what revoked keys got back since (their calls in flight settled
    or were released) on to the key their credits went to: (from, to, credits)."""
    moved = []
    for key in ApiKey.objects.filter(refund_to__isnull=False, credits__gt=0).select_related("refund_to"):
        with transaction.atomic():
            locked = ApiKey.objects.select_for_update().get(pk=key.pk)
            if not locked.credits:
                continue
            do_transfer_credits(locked, key.refund_to, locked.credits, reason="late refund of a revoked key")
        moved.append((key.pk, key.refund_to_id, locked.credits))
    return moved
