"""Writing request logs: one Request row and its MinerResponse rows.

On PostgreSQL both go in one SQL statement (the miners through ``unnest``):
one round trip, atomic without a transaction block, and little Python — the
write runs on a DB thread while the event loop serves the next request, so
every microsecond it holds the GIL is taken from someone's latency.
Elsewhere (SQLite on a laptop) the ORM does it in one transaction."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from django.db import connection, transaction

from .models import MinerResponse, Request

log = logging.getLogger(__name__)


@dataclass
class MinerLog:
    uid: int
    hotkey: str
    is_success: bool
    response: str = ""
    error: str = ""
    status: int | None = None
    response_ms: float = 0.0


@dataclass
class RequestLog:
    route: str
    started_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    key_id: int | None = None
    user_id: int | None = None
    messages: list = field(default_factory=list)
    strategy: str = ""
    status: int = 200
    api_error: str = ""
    credits_charged: int = 0
    elapsed_ms: float = 0.0
    client_ip: str | None = None
    miners: list[MinerLog] = field(default_factory=list)


def record_request(entry: RequestLog) -> None:
    if connection.vendor == "postgresql":
        _write_in_one_statement(entry, replace=False)
    else:
        _insert_with_the_orm(entry)


def rewrite_request(entry: RequestLog) -> None:
    """Replace a request logged early (a stream, from its first content on)
    with its final state; written anew if the early write never landed."""
    if connection.vendor == "postgresql":
        _write_in_one_statement(entry, replace=True)
        return
    with transaction.atomic():
        MinerResponse.objects.filter(request_id=entry.id).delete()
        Request.objects.filter(pk=entry.id).delete()
        _insert_with_the_orm(entry)


def _columns(model, names: list[str]) -> str:
    return ", ".join(model._meta.get_field(name).column for name in names)


REQUEST_FIELDS = [
    "id", "key", "user", "route", "messages", "strategy", "status", "api_error",
    "credits_charged", "started_at", "elapsed_ms", "client_ip",
]  # fmt: skip
MINER_FIELDS = ["request", "uid", "hotkey", "is_success", "response", "error", "status", "response_ms"]


def _write_sql(*, replace: bool) -> str:
    """The request row and its miner rows in one statement. ``replace``: an
    earlier version of the request goes (its miner rows deleted, its row
    updated) — the statement's parts all see the table as it was before it."""
    request_table, miner_table = Request._meta.db_table, MinerResponse._meta.db_table
    request_fk = MinerResponse._meta.get_field("request").column
    final = ("status", "api_error", "credits_charged", "elapsed_ms", "strategy", "messages")
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (Request._meta.get_field(f).column for f in final))
    return (
        (f"WITH gone AS (DELETE FROM {miner_table} WHERE {request_fk} = %s), " if replace else "WITH ")
        + f"saved AS (INSERT INTO {request_table} ({_columns(Request, REQUEST_FIELDS)}) "
        "VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s::inet)"
        + (f" ON CONFLICT (id) DO UPDATE SET {updates}" if replace else "")
        + f") INSERT INTO {miner_table} ({_columns(MinerResponse, MINER_FIELDS)}) "
        "SELECT %s, * FROM unnest(%s::int[], %s::text[], %s::bool[], %s::text[], %s::text[], %s::int[], %s::float8[])"
    )


_SQL = {False: _write_sql(replace=False), True: _write_sql(replace=True)}


def _write_in_one_statement(entry: RequestLog, *, replace: bool) -> None:
    miners = entry.miners
    params = [
        entry.id, entry.key_id, entry.user_id, entry.route, orjson.dumps(entry.messages).decode(), entry.strategy,
        entry.status, entry.api_error, entry.credits_charged, entry.started_at, entry.elapsed_ms, entry.client_ip,
        entry.id, [m.uid for m in miners], [m.hotkey for m in miners], [m.is_success for m in miners],
        [m.response for m in miners], [m.error for m in miners], [m.status for m in miners],
        [m.response_ms for m in miners],
    ]  # fmt: skip
    if replace:  # the DELETE of the old miner rows comes first
        params.insert(0, entry.id)
    with connection.cursor() as cursor:
        cursor.execute(_SQL[replace], params)


def _insert_with_the_orm(entry: RequestLog) -> None:
    with transaction.atomic():
        request = Request.objects.create(
            id=entry.id,
            key_id=entry.key_id,
            user_id=entry.user_id,
            route=entry.route,
            messages=entry.messages,
            strategy=entry.strategy,
            status=entry.status,
            api_error=entry.api_error,
            credits_charged=entry.credits_charged,
            started_at=entry.started_at,
            elapsed_ms=entry.elapsed_ms,
            client_ip=entry.client_ip,
        )
        if entry.miners:
            MinerResponse.objects.bulk_create(
                MinerResponse(
                    request=request,
                    uid=m.uid,
                    hotkey=m.hotkey,
                    is_success=m.is_success,
                    response=m.response,
                    error=m.error,
                    status=m.status,
                    response_ms=m.response_ms,
                )
                for m in entry.miners
            )
