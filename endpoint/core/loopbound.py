"""Objects that belong to one event loop: aiohttp sessions, redis.asyncio and
OpenAI clients, psycopg pools, batches waiting for a task. Such an object
fails or hangs when used from a loop other than the one it was made on, and
one process runs many loops (each ``asyncio.run``, each test, the DB-thread
bridges), so each loop gets its own.

The loops are held weakly: a loop that is gone takes its objects with it,
unclosed. Who must close them calls ``pop()`` before the loop ends.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class PerLoop(Generic[K, V]):
    """Values by key, separately for each running event loop. Every method
    must be called from a running loop (RuntimeError otherwise)."""

    __slots__ = ("_loops",)

    def __init__(self) -> None:
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[K, V]] = weakref.WeakKeyDictionary()

    def get(self, key: K, factory: Callable[[K], V]) -> V:
        """This loop's value for ``key``, made by ``factory(key)`` the first time."""
        loop = asyncio.get_running_loop()
        try:
            # The hot path (every miner call, every Redis call): two lookups, nothing made.
            return self._loops[loop][key]
        except KeyError:
            pass
        value = self._loops.setdefault(loop, {})[key] = factory(key)
        return value

    def peek(self, key: K) -> V | None:
        """This loop's value for ``key``, or None; never makes one."""
        values = self._loops.get(asyncio.get_running_loop())
        return None if values is None else values.get(key)

    def set(self, key: K, value: V) -> V:
        """Make ``value`` this loop's value for ``key`` (replacing any) and return it."""
        self._loops.setdefault(asyncio.get_running_loop(), {})[key] = value
        return value

    def pop(self) -> list[V]:
        """Forget all of this loop's values and return them, for the caller to close."""
        return list(self._loops.pop(asyncio.get_running_loop(), {}).values())
