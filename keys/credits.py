"""The charge: credits held before a call, settled after it, adjusted by
operators. Every change is one conditional UPDATE in the database, never a
read-modify-write in Python, so concurrent calls can't overspend a key and
concurrent top-ups sum exactly. The log writer applies a settlement in the
same statement as the request's log (``settle_sql``), so a charge and its log
land together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import connection
from django.db.models import F
from django.utils import timezone

from endpoint.core import asyncdb, errors
from endpoint.core.errors import CreditsWouldGoNegative, KeyInputError, UnlimitedCredits
from endpoint.core.sql import column, table

from .models import ApiKey

log = logging.getLogger(__name__)


@dataclass
class Reservation:
    key_id: int
    held: int  # credits taken from the key; 0 for unlimited keys


@dataclass(frozen=True)
class Settlement:
    """What a finished call owes its key: the hold given back beyond what
    was used, and the call counted. Applied once, in one UPDATE — alone
    (``settle_credits``) or in the same statement as the request's log
    (``logs.services``), so a charge and its log land together."""

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
        """The parameters of SETTLE_SQL, the UPDATE that applies it (``credits
        + 0`` leaves an unlimited key's NULL as it is)."""
        return [self.refund, self.miner_calls, timezone.now(), self.reservation.key_id]


# The two statements every API call runs, written once as SQL: compiling the
# ORM's filter().update(F()) cost more than the round trip itself (0.7 ms
# of 1.25 ms per call on the 2-core bench machine).
_TABLE = table(ApiKey)
_CREDITS = column(ApiKey, "credits")
_ID, _COUNT, _REQUESTS, _LAST_USED = (
    column(ApiKey, f) for f in ("id", "api_request_count", "request_count", "last_used_at")
)
_RESERVE_SQL = f"UPDATE {_TABLE} SET {_CREDITS} = {_CREDITS} - %s WHERE {_ID} = %s AND {_CREDITS} >= %s"
# On PostgreSQL the hold doesn't wait for the disk: the statement that settles
# the call commits after it and flushes it with itself (or, with
# LOG_SYNCHRONOUS_COMMIT off, shares its fate). Overspending is stopped by the
# row lock and the condition, which don't depend on the flush.
_RESERVE_SQL_PG = (
    f"UPDATE {_TABLE} SET {_CREDITS} = {_CREDITS} - %s FROM (SELECT {asyncdb.ASYNC_COMMIT}) AS commit_mode "
    f"WHERE {_ID} = %s AND {_CREDITS} >= %s"
)
SETTLE_SQL = (
    f"UPDATE {_TABLE} SET {_CREDITS} = {_CREDITS} + %s, "
    f"{_COUNT} = {_COUNT} + 1, {_REQUESTS} = {_REQUESTS} + %s, {_LAST_USED} = %s WHERE {_ID} = %s"
)


def _reserve_sql() -> str:
    return _RESERVE_SQL_PG if connection.vendor == "postgresql" else _RESERVE_SQL


def reserve_credits(key: ApiKey, n: int) -> Reservation:
    """Take ``n`` credits from ``key`` up front, or raise NotEnoughCredits:
    one conditional UPDATE, so concurrent calls can't overspend."""
    if key.credits is None or n <= 0:
        return Reservation(key_id=key.pk, held=0)
    with connection.cursor() as cursor:
        cursor.execute(_reserve_sql(), [n, key.pk, n])
        if cursor.rowcount != 1:
            raise errors.APIKeyNotEnoughCredits()
    return Reservation(key_id=key.pk, held=n)


def settle_sql_if(condition: str) -> str:
    """SETTLE_SQL applied only where ``condition`` (SQL) holds: how the log
    writer settles a call in the statement that logs it, once."""
    return f"{SETTLE_SQL} AND {condition}"


def apply_settlement(settlement: Settlement) -> int:
    """Apply ``settlement`` on its own; returns the credits the call cost."""
    with connection.cursor() as cursor:
        cursor.execute(SETTLE_SQL, settlement.params())
    return settlement.cost


def settle_credits(reservation: Reservation, used: int, miner_calls: int = 0) -> int:
    """Give back what the reservation held beyond ``used``, and count the
    call on the key, in one UPDATE. Returns the credits the call cost."""
    return apply_settlement(Settlement(reservation, used, miner_calls))


def do_adjust_credits(key: ApiKey, delta: int, *, reason: str = "", actor: str = "") -> ApiKey:
    """Add ``delta`` credits to ``key`` (take them when negative) in one
    conditional UPDATE, so concurrent top-ups and charges sum exactly and the
    balance never goes below zero. The reason and who gave it go to the log,
    the only record of a manual adjustment."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise KeyInputError("the change in credits must be a whole number other than 0")
    qs = ApiKey.objects.filter(pk=key.pk, credits__isnull=False)
    if delta < 0:
        qs = qs.filter(credits__gte=-delta)
    if not qs.update(credits=F("credits") + delta):
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


async def areserve_credits(key: ApiKey, n: int) -> Reservation:
    """``reserve_credits`` for async code (from the event loop when the server
    gave it a pool); unlimited keys need no round trip."""
    if key.credits is None or n <= 0:
        return Reservation(key_id=key.pk, held=0)
    if await asyncdb.execute(_reserve_sql(), [n, key.pk, n]) != 1:
        raise errors.APIKeyNotEnoughCredits()
    return Reservation(key_id=key.pk, held=n)
