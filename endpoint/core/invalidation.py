"""Edits take effect everywhere at once. Each process keeps short-lived
copies of hot rows (API keys, the runtime config) so a call needs no query
for them; an edit — in any process, from the admin, the CLI or the REST API
— is announced with PostgreSQL's NOTIFY, and every server worker listens
(``listen``, started with the worker) and drops its copies when the edit
commits. The copies' time-to-live stays as a safety net only (a listener
that lost its connection drops everything when it is back).

Without PostgreSQL (SQLite on a laptop: one process) the edit's own process
forgets at once, and the others, if any, when the copies expire."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from django.db import connection

log = logging.getLogger(__name__)

CHANNEL = "vep_changes"
EVERYTHING = "*"  # a listener back from an outage: whatever it missed

_handlers: dict[str, list[Callable[[str], None]]] = defaultdict(list)


def on_change(kind: str, forget: Callable[[str], None]) -> None:
    """Call ``forget(ident)`` whenever a ``kind`` changes, in any process."""
    _handlers[kind].append(forget)


def forget_locally(kind: str, ident: str = "") -> None:
    kinds = list(_handlers) if kind == EVERYTHING else [kind]
    for name in kinds:
        for forget in _handlers.get(name, ()):
            forget(ident)


def announce(kind: str, ident: str = "") -> None:
    """This process forgets now; every other when the current transaction
    commits (NOTIFY is delivered on commit, and never for a rollback)."""
    forget_locally(kind, ident)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, f"{kind}:{ident}"])


async def listen(ready: asyncio.Event | None = None) -> None:
    """Forget what other processes announce, for as long as the worker runs
    (a task of the ASGI lifespan). Reconnects after a lost connection."""
    if connection.vendor != "postgresql":
        return
    import psycopg

    from .asyncdb import connect_kwargs

    logged_at = 0.0
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(**connect_kwargs()) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                forget_locally(EVERYTHING)  # anything announced while nobody listened
                if ready is not None:
                    ready.set()
                async for note in conn.notifies():
                    kind, _, ident = note.payload.partition(":")
                    forget_locally(kind, ident)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if time.monotonic() - logged_at > 60:
                logged_at = time.monotonic()
                log.error("not hearing about edits (%s); cached keys and config expire on their own meanwhile", exc)
            await asyncio.sleep(1)
