"""Liveness and readiness, for load balancers and orchestrators.

/health/live: the process answers. /health/ready: it can serve prompts —
database, cache, a fresh metagraph and a hotkey; the rate limiter's Redis is
reported too, and fails readiness only when limits are set to fail closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone

from endpoint.core import errors
from endpoint.core.config import aruntime_config
from endpoint.core.db import run_db
from endpoint.network.metagraph import adirectory
from endpoint.network.wallet import validator_hotkey
from endpoint.ratelimits import limiter_health

CHECK_TIMEOUT = 3.0


async def live(request):
    return JsonResponse({"status": "ok"})


def _query_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _use_cache() -> None:
    cache.set("health:ready", "1", 10)
    if cache.get("health:ready") != "1":
        raise RuntimeError("cache did not return what was stored")


async def _database() -> str:
    await run_db(_query_database)
    return "ok"


async def _cache() -> str:
    await run_db(_use_cache)
    return "ok"


async def _metagraph() -> str:
    directory = await adirectory()
    if directory.empty or directory.synced_at is None:
        raise RuntimeError("never synced")
    age = (timezone.now() - directory.synced_at).total_seconds()
    if age > settings.METAGRAPH_MAX_AGE_SECONDS:
        raise RuntimeError(f"last synced {age:.0f} s ago (limit {settings.METAGRAPH_MAX_AGE_SECONDS} s)")
    return f"{len(directory.ranked)} serving, synced {age:.0f} s ago"


async def _hotkey() -> str:
    config = await aruntime_config()
    try:
        return validator_hotkey(config.hotkey_mnemonic).ss58_address
    except errors.HotkeyNotConfigured as exc:
        raise RuntimeError(exc.detail) from None


async def _run(check: Callable[[], Awaitable[str]]) -> dict:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return {"ok": True, "detail": await check()}
    except Exception as exc:  # any failure is the answer, named
        return {"ok": False, "detail": str(exc) or type(exc).__name__}


async def ready(request):
    names = ("database", "cache", "metagraph", "hotkey")
    results = await asyncio.gather(*(_run(c) for c in (_database, _cache, _metagraph, _hotkey)))
    checks = dict(zip(names, results, strict=True))
    limiter_ok, limiter_detail = await limiter_health()
    checks["rate_limiter"] = {"ok": limiter_ok, "detail": limiter_detail}
    required = [*names, "rate_limiter"] if settings.RATE_LIMIT_FAIL_CLOSED else list(names)
    failing = [name for name in required if not checks[name]["ok"]]
    body = {"status": "unavailable" if failing else "ok", "failing": failing, "checks": checks}
    return JsonResponse(body, status=503 if failing else 200)
