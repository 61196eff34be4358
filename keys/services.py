"""Everything that writes API keys: creation, edits, authentication (the
credits they hold and spend are in ``keys.credits``).

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
from django.db import transaction

from endpoint.core import errors
from endpoint.core.db import run_db
from endpoint.core.errors import KeyInputError
from endpoint.core.invalidation import announce
from endpoint.core.strategies import normalize_strategy

from .credits import record_entry, record_new_balance
from .models import KEY_PREFIX, PREFIX_LENGTH, ApiKey, CreditEntry, hash_secret

log = logging.getLogger(__name__)


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
    with transaction.atomic():
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
        record_entry(key, CreditEntry.GRANT, credits or 0, reason="the key's first credits")
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
    if changes.get("enabled") and key.refund_to_id:  # back in use: its credits stay its own
        key.refund_to = None
        changes["refund_to"] = None
    if "credits" not in changes:
        key.save(update_fields=list(changes) or None)
        return key
    with transaction.atomic():
        # Locked, so no hold or settlement lands between the ledger's sum and the new balance.
        ApiKey.objects.select_for_update().filter(pk=key.pk).exists()
        key.save(update_fields=list(changes))
        record_new_balance(key, changes["credits"], reason="balance set")
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


# --- the hot path -----------------------------------------------------------------
# Authentication is served from a short-lived in-process cache: a key lookup
# costs a DB round trip plus a thread hop, on every call. Saving or deleting a
# key drops its copy in every process when the edit commits
# (endpoint.core.invalidation); AUTH_CACHE_SECONDS is a safety net only.
# Credits, and whether a key has a limit at all, are never cached: the hold
# reads them.

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
    generation = _forgotten
    key = await run_db(lambda: ApiKey.objects.filter(secret_hash=digest).first())
    if key is None:
        raise errors.APIKeyInvalid()
    if len(_auth_cache) >= _AUTH_CACHE_MAX:
        _auth_cache.clear()
    if generation == _forgotten:  # not edited while it was read: the copy is current
        _auth_cache[digest] = (time.monotonic(), key)
    return _usable(key)


_forgotten = 0  # how many times the cache was dropped


def forget_authenticated_keys(digest: str = "") -> None:
    """Drop the copy of the key with this secret hash (all copies without one)."""
    global _forgotten
    _forgotten += 1
    if digest:
        _auth_cache.pop(digest, None)
    else:
        _auth_cache.clear()


def key_changed(instance: ApiKey, **_: object) -> None:
    """A key was saved or deleted: every process forgets its copy (see endpoint.core.invalidation)."""
    announce("key", instance.secret_hash)
