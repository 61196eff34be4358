"""Everything that writes API keys: creation, edits, authentication, credits.

Counters move in the database (conditional UPDATEs with F()), never as
read-modify-write in Python, so concurrent requests can't overspend a key.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from endpoint import asyncdb, errors
from endpoint.db import run_db
from endpoint.strategies import normalize_strategy

from .models import KEY_PREFIX, PREFIX_LENGTH, ApiKey, hash_secret

log = logging.getLogger(__name__)


class KeyInputError(ValueError):
    """Bad operator input about keys (CLI, admin)."""


class UnlimitedCredits(KeyInputError):
    """Credits were to be added to or taken from a key that has no limit."""


class CreditsWouldGoNegative(KeyInputError):
    """Taking the credits would leave the key below zero."""


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    raw: str  # shown once, never stored


def generate_raw_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _check_fields(credits: int | None, default_strategy: str | None) -> str | None:
    if credits is not None and credits < 0:
        raise KeyInputError("credits must be 0 or more, or -1 for unlimited")
    if default_strategy is None:
        return None
    try:
        return normalize_strategy(default_strategy)
    except ValueError as exc:
        raise KeyInputError(str(exc)) from None


def do_create_key(
    *,
    name: str = "",
    credits: int | None = None,
    expires_at: datetime | None = None,
    enabled: bool = True,
    default_strategy: str = "",
    owner=None,
) -> NewKey:
    strategy = _check_fields(credits, default_strategy) or ""
    raw = generate_raw_key()
    key = ApiKey.objects.create(
        name=name,
        prefix=raw[:PREFIX_LENGTH],
        secret_hash=hash_secret(raw),
        owner=owner,
        enabled=enabled,
        expires_at=expires_at,
        credits=credits,
        default_strategy=strategy,
    )
    return NewKey(key=key, raw=raw)


def do_edit_key(key: ApiKey, **changes) -> ApiKey:
    """Change the named fields of ``key`` (name, credits, expires_at, enabled,
    default_strategy, rate_limits, request_count)."""
    allowed = {"name", "credits", "expires_at", "enabled", "default_strategy", "rate_limits", "request_count"}
    unknown = set(changes) - allowed
    if unknown:
        raise KeyInputError(f"cannot edit {', '.join(sorted(unknown))}")
    strategy = _check_fields(changes.get("credits"), changes.get("default_strategy"))
    if strategy is not None:
        changes["default_strategy"] = strategy
    if changes.get("request_count", 0) < 0:
        raise KeyInputError("request count must be 0 or more")
    for field, value in changes.items():
        setattr(key, field, value)
    key.save(update_fields=list(changes) or None)
    return key


def do_delete_key(key: ApiKey) -> None:
    key.delete()


def find_key(query: str) -> ApiKey:
    """The one key an operator's query (id, prefix or full key) names."""
    matches = list(ApiKey.objects.matching(query)[:2])
    if not matches:
        raise KeyInputError(f"no API key matches {query!r}")
    if len(matches) > 1:
        raise KeyInputError(f"{query!r} matches more than one key; give its id or a longer prefix")
    return matches[0]


def parse_bearer(header: str | None) -> str:
    if not header:
        raise errors.APIKeyMissing()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.APIKeyMissing("Send the API key as 'Authorization: Bearer <key>'.")
    return token.strip()


# --- credits ----------------------------------------------------------------


@dataclass
class Reservation:
    key_id: int
    held: int  # credits taken from the key; 0 for unlimited keys


@dataclass(frozen=True)
class Settlement:
    """What a finished call owes its key: the hold given back beyond what
    was used, and the call counted. Applied once, in one UPDATE — alone
    (``settle_credits``) or in the same statement as the request's log
    (``logs.services.record_request``), so a charge and its log land together."""

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
def _column(name: str) -> str:
    return ApiKey._meta.get_field(name).column


_TABLE = ApiKey._meta.db_table
_CREDITS = _column("credits")
_RESERVE_SQL = f"UPDATE {_TABLE} SET {_CREDITS} = {_CREDITS} - %s WHERE id = %s AND {_CREDITS} >= %s"
# On PostgreSQL the hold doesn't wait for the disk: the statement that settles
# the call commits after it and flushes it with itself (or, with
# LOG_SYNCHRONOUS_COMMIT off, shares its fate). Overspending is stopped by the
# row lock and the condition, which don't depend on the flush.
_RESERVE_SQL_PG = (
    f"UPDATE {_TABLE} SET {_CREDITS} = {_CREDITS} - %s FROM (SELECT {asyncdb.ASYNC_COMMIT}) AS commit_mode "
    f"WHERE id = %s AND {_CREDITS} >= %s"
)
SETTLE_SQL = (
    f"UPDATE {_TABLE} SET {_CREDITS} = {_CREDITS} + %s, "
    f"{_column('api_request_count')} = {_column('api_request_count')} + 1, "
    f"{_column('request_count')} = {_column('request_count')} + %s, {_column('last_used_at')} = %s WHERE id = %s"
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


def settle_credits(reservation: Reservation, used: int, miner_calls: int = 0) -> int:
    """Give back what the reservation held beyond ``used``, and count the
    call on the key, in one UPDATE. Returns the credits the call cost."""
    settlement = Settlement(reservation, used, miner_calls)
    with connection.cursor() as cursor:
        cursor.execute(SETTLE_SQL, settlement.params())
    return settlement.cost


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


# --- the hot path -----------------------------------------------------------------
# Authentication is served from a short-lived in-process cache: a key lookup
# costs a DB round trip plus a thread hop, on every call. Saving or deleting a
# key clears this process's cache at once; other processes see the change
# within AUTH_CACHE_SECONDS. Credits are never cached: reservations always go
# to the database.

_auth_cache: dict[str, tuple[float, ApiKey]] = {}
_AUTH_CACHE_MAX = 10_000


def _usable(key: ApiKey) -> ApiKey:
    if not key.enabled:
        raise errors.APIKeyDisabled()
    if key.is_expired:
        raise errors.APIKeyExpired()
    return key


async def aauthenticate_key(raw_key: str) -> ApiKey:
    """The enabled, unexpired key for ``raw_key``, answered from the cache
    when fresh (else one indexed query)."""
    digest = hash_secret(raw_key)
    hit = _auth_cache.get(digest)
    if hit is not None and time.monotonic() - hit[0] < settings.AUTH_CACHE_SECONDS:
        return _usable(hit[1])
    key = await run_db(lambda: ApiKey.objects.filter(secret_hash=digest).first())
    if key is None:
        raise errors.APIKeyInvalid()
    if len(_auth_cache) >= _AUTH_CACHE_MAX:
        _auth_cache.clear()
    _auth_cache[digest] = (time.monotonic(), key)
    return _usable(key)


def forget_authenticated_keys(**_: object) -> None:
    _auth_cache.clear()


async def areserve_credits(key: ApiKey, n: int) -> Reservation:
    """``reserve_credits`` for async code (from the event loop when the server
    gave it a pool); unlimited keys need no round trip."""
    if key.credits is None or n <= 0:
        return Reservation(key_id=key.pk, held=0)
    if await asyncdb.execute(_reserve_sql(), [n, key.pk, n]) != 1:
        raise errors.APIKeyNotEnoughCredits()
    return Reservation(key_id=key.pk, held=n)
