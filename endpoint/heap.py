"""Giving memory back to the system once a burst of requests is over.

After a burst (500 concurrent calls, a 64-miner fan-out) Python has freed
the objects, but glibc keeps the freed pages in its arenas for reuse;
``malloc_trim`` hands back those that are wholly free. On the bench that is
1–3 MB a worker: most of what a worker gains in a burst stays in use (see
tests/bench/RESULTS.md). It runs only when the worker has been quiet for a
moment (no request in flight, none finished for HEAP_TRIM_IDLE_SECONDS),
not while requests are being served, and only after requests have been
served since the last trim, so an idle worker does nothing. Where glibc is
not the allocator (musl, macOS) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time

from django.conf import settings


def _load_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_malloc_trim = _load_trim()


class Quiet:
    """Counts the worker's requests; trims the heap when they stop."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.served_since_trim = 0
        self.last_finished = 0.0

    def started(self) -> None:
        self.in_flight += 1

    def finished(self) -> None:
        self.in_flight -= 1
        self.served_since_trim += 1
        self.last_finished = time.monotonic()

    def due(self, idle_seconds: float) -> bool:
        quiet_for = time.monotonic() - self.last_finished
        return self.served_since_trim > 0 and self.in_flight == 0 and quiet_for >= idle_seconds

    def trim(self) -> bool:
        """Give free heap pages back now; True if any were."""
        self.served_since_trim = 0
        return bool(_malloc_trim(0)) if _malloc_trim is not None else False

    async def watch(self) -> None:
        """Trim whenever the worker has been quiet long enough (the lifespan runs this)."""
        idle = settings.HEAP_TRIM_IDLE_SECONDS
        if idle <= 0 or _malloc_trim is None:
            return
        while True:
            await asyncio.sleep(idle)
            if self.due(idle):
                self.trim()


requests = Quiet()
