"""The two SQL statements of every API call, from the event loop.

Each call holds credits before the miners are asked and, after, settles them
with the request's log (keys.services, logs.services). Through ``run_db``
each is a hop to a DB thread and back: two thread wake-ups per statement,
which on a small machine cost as much as the statement. Where a server runs
one long-lived event loop per worker (``manage.py start``, uvicorn), the
ASGI lifespan opens a small psycopg async pool on it, and these statements
go straight from the loop to PostgreSQL. Everywhere else — SQLite, an
in-process test client, a loop without a pool — they run on a DB thread as
before. The SQL, the adapters and the autocommit are Django's own.
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import Any

from django.conf import settings
from django.db import OperationalError as DjangoOperationalError
from django.db import connection

from endpoint.core.db import on_postgresql, run_db
from endpoint.core.loopbound import PerLoop

log = logging.getLogger(__name__)

APPLICATION_NAME = "vep-gateway"  # how the pool's connections show in pg_stat_activity

# Evaluated inside a statement, this makes the statement's own transaction
# commit without waiting for its WAL to reach the disk (the session's setting
# is left as it is). PostgreSQL still applies the statement atomically and in
# order: a later commit that is flushed flushes this one too. What it saves is
# the wait for the disk, about 0.4 ms a statement on the bench machine.
ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"

_pools: PerLoop[None, Any] = PerLoop()


def connect_kwargs() -> dict[str, Any]:
    """Django's own connection parameters (adapters, time zone handling),
    with psycopg's async client-side-binding cursor: the SQL is rendered
    exactly as on Django's connections."""
    from psycopg import AsyncClientCursor

    params = connection.get_connection_params()
    params["cursor_factory"] = AsyncClientCursor
    params["autocommit"] = True
    params["application_name"] = APPLICATION_NAME
    return params


async def open_pool() -> bool:
    """Open this loop's pool (PostgreSQL only); True if one is open. Its
    connections are made in the background: a database that is down at
    start doesn't stop the server (calls fail, /health/ready says why)."""
    if _pools.peek(None) is not None:
        return True
    if not on_postgresql():
        return False
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        kwargs=connect_kwargs(),
        check=_check_if_idle,
        min_size=1,
        max_size=settings.DB_THREADS,
        timeout=settings.DB_POOL_TIMEOUT_SECONDS,
        name=APPLICATION_NAME,
        open=False,
    )
    await pool.open(wait=False)
    _pools.set(None, pool)
    return True


async def close_pool() -> None:
    for pool in _pools.pop():
        await pool.close()


def _execute(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _fetch_one(sql: str, params: list) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


async def execute(sql: str, params: list) -> int:
    """Run one statement (autocommit); returns the rows it changed."""
    pool = _pools.peek(None)
    if pool is None:
        return await run_db(_execute, sql, params)
    cursor = await _run(pool, sql, params)
    return cursor.rowcount


async def fetch_one(sql: str, params: list) -> tuple | None:
    """Run one statement (autocommit); returns its first row."""
    pool = _pools.peek(None)
    if pool is None:
        return await run_db(_fetch_one, sql, params)
    cursor = await _run(pool, sql, params, fetch=True)
    return cursor


async def _run(pool, sql: str, params: list, fetch: bool = False):
    """One statement on a pooled connection, retried once on another if the
    connection turns out dead (the server restarted, or an operator ended
    it): a dead connection's statement never ran, or ran and was rolled
    back with its transaction. Our statements are safe to repeat anyway (a
    hold's or a log's second run changes nothing twice). psycopg's errors
    come out as django.db's, as on the ORM path."""
    import psycopg

    for attempt in (1, 2):
        try:
            with connection.wrap_database_errors:
                async with pool.connection() as conn:
                    cursor = await conn.execute(sql, params)
                    _last_used[conn] = time.monotonic()
                    return await cursor.fetchone() if fetch else cursor
        except DjangoOperationalError as exc:
            if attempt == 2 or not isinstance(exc.__cause__, psycopg.OperationalError):
                raise
            log.warning("a pooled database connection was dead (%s); retrying on another", exc)
    raise AssertionError("unreachable")


# Connections used within this many seconds are taken as alive; older ones
# are pinged before use (one round trip), so a pool left idle while the
# database restarted doesn't hand out dead connections.
IDLE_CHECK_SECONDS = 1.0
_last_used: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def _check_if_idle(conn) -> None:
    last = _last_used.get(conn)
    if last is None or time.monotonic() - last > IDLE_CHECK_SECONDS:
        await conn.execute("")
        _last_used[conn] = time.monotonic()
