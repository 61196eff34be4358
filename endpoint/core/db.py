"""Database work from async code.

Django's ORM is synchronous. Async views hand their DB work to a small fixed
pool of threads, each keeping one persistent connection, so a thousand
requests waiting on miners hold no connection and no thread, and the DB sees
at most ``DB_THREADS`` connections per process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, connections
from django.db.utils import load_backend

from endpoint.core.loopbound import PerLoop

T = TypeVar("T")

log = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def on_postgresql() -> bool:
    """Whether the default database is PostgreSQL, read from its backend
    class: asking ``connection.vendor`` from async code builds a connection
    object for each request's context just to answer."""
    return _vendor(settings.DATABASES["default"]["ENGINE"]) == "postgresql"


@functools.cache
def _vendor(engine: str) -> str:
    return load_backend(engine).DatabaseWrapper.vendor


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=settings.DB_THREADS, thread_name_prefix="db")
        return _executor


def _call(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    except (OperationalError, InterfaceError):
        # This thread's connection died while it waited (the server restarted,
        # or an operator ended it): run again, once, on a new one. A dead
        # connection's statement never ran, or was rolled back.
        if connection.in_atomic_block or (connection.connection is not None and connection.is_usable()):
            raise
        log.warning("a DB thread's connection was dead; retrying on a new one")
        connection.close()
        return fn(*args, **kwargs)


async def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(*args, **kwargs)`` (sync ORM code) on a DB thread."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(_call, fn, args, kwargs))


_refreshes: PerLoop[str, asyncio.Future] = PerLoop()


def refresh_soon(name: str, fn: Callable[[], Any]) -> None:
    """Run ``fn`` on a DB thread in the background, unless a refresh of
    ``name`` is under way already. For caches that serve their stale copy
    meanwhile: the request that finds the cache expired doesn't wait for the
    reload (at 100 requests a second, a 1 s cache reloaded inline puts a DB
    round trip in every hundredth request: the p99)."""
    running = _refreshes.peek(name)
    if running is not None and not running.done():
        return

    async def refresh() -> None:
        try:
            await run_db(fn)
        except Exception:
            log.exception("refreshing %s failed; the stale copy is served a little longer", name)

    _refreshes.set(name, asyncio.ensure_future(refresh()))


async def cached_or_loaded(
    cached: tuple[float, T] | None, window: float, name: str, reload: Callable[[], Any], load: Callable[[], T]
) -> T:
    """A per-process cache ``(monotonic time, value)`` read from async code:
    within ``window`` the copy as it is; up to twice as old, the copy while
    ``reload`` runs in the background (``refresh_soon``); older, or none yet,
    ``load`` on a DB thread, waited for."""
    if cached is not None:
        age = time.monotonic() - cached[0]
        if age <= window:
            return cached[1]
        if age <= 2 * window:
            refresh_soon(name, reload)
            return cached[1]
    return await run_db(load)


def close_db_threads() -> None:
    """Close every DB thread's connection and stop the pool (tests, shutdown)."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is None:
        return
    n = executor._max_workers
    barrier = threading.Barrier(n, timeout=5)

    def close_here() -> None:
        connections.close_all()
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass

    for f in [executor.submit(close_here) for _ in range(n)]:
        f.result()
    executor.shutdown(wait=True)
