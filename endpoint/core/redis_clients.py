"""The Redis clients of the hot path (rate limits, miner statistics): one
asyncio client per event loop (a redis.asyncio client is bound to the loop
it was made on) and one blocking client per process, each with short
timeouts so a dead Redis costs a request at most RATE_LIMIT_REDIS_TIMEOUT.

Also the outage log every user of Redis shares: a down Redis fails every
request, so each user of it says so at most once a minute."""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from endpoint.core.loopbound import PerLoop

# What a down, restarting or overloaded Redis raises (TimeoutError is an OSError).
UNREACHABLE = (RedisError, OSError)

OUTAGE_LOG_INTERVAL = 60.0

_async: PerLoop[str, aioredis.Redis] = PerLoop()
_sync: dict[str, redis.Redis] = {}


def _options() -> dict:
    timeout = settings.RATE_LIMIT_REDIS_TIMEOUT
    return {"socket_connect_timeout": timeout, "socket_timeout": timeout}


def async_redis(url: str) -> aioredis.Redis:
    return _async.get(url, _new_async_client)


def _new_async_client(url: str) -> aioredis.Redis:
    # One immediate retry repairs a connection Redis dropped (a restart);
    # never on a timeout, when a script may already have run.
    retry = AsyncRetry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    # A bounded pool: a burst of concurrent calls shares a few connections
    # (a round trip is a fraction of a millisecond) instead of opening one
    # per call and keeping them all, some 80 kB of buffers each, for good.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        timeout=settings.RATE_LIMIT_REDIS_TIMEOUT,
        retry=retry,
        **_options(),
    )
    return aioredis.Redis.from_pool(pool)


def sync_redis(url: str) -> redis.Redis:
    client = _sync.get(url)
    if client is None:
        retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        client = _sync[url] = redis.Redis.from_url(url, retry=retry, **_options())
    return client


async def close_async_redis() -> None:
    """Close this event loop's clients (tests, shutdown)."""
    for client in _async.pop():
        await client.aclose()


# --- telling operators Redis is gone ----------------------------------------------

_outage_logged_at: dict[tuple[str, str], float] = {}
_outage_lock = threading.Lock()  # sync views report from several threads


def redis_location(url: str) -> str:
    """The Redis URL without credentials, fit for a log line."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path}"


def report_outage(log: logging.Logger, who: str, url: str, exc: BaseException, consequence: str) -> None:
    """Log once a minute (per ``who`` and URL) that ``who`` cannot reach Redis
    at ``url`` and what it does meanwhile."""
    now = time.monotonic()
    with _outage_lock:
        last = _outage_logged_at.get((who, url))
        if last is not None and now - last < OUTAGE_LOG_INTERVAL:
            return
        _outage_logged_at[(who, url)] = now
    log.error("%s: Redis at %s is unreachable (%s); %s", who, redis_location(url), type(exc).__name__, consequence)
