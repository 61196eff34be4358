"""Writing request logs: one Request row and its MinerResponse rows, and
the settlement of the call's credits with them.

On PostgreSQL all of it goes in one SQL statement (the miners through
``unnest``, the key's UPDATE as a CTE): one round trip and one commit,
atomic without a transaction block, and little Python — the write runs on a
DB thread while the event loop serves the next request, so every
microsecond it holds the GIL is taken from someone's latency. Elsewhere
(SQLite on a laptop) the ORM does it in one transaction.

The settlement rides with the statement that *creates* the request's row:
a stream's early record carries it, and the final rewrite applies it only
if that early record never landed. So a call is settled exactly once, and
never without its log. Unless LOG_SYNCHRONOUS_COMMIT says so, the commit
doesn't wait for the disk (see the setting)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

import orjson
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction

from endpoint.core import asyncdb
from endpoint.core.db import on_postgresql, run_db
from endpoint.core.sql import column, columns, table
from keys.credits import (
    ReleasedHold,
    Settlement,
    apply_settlement,
    forward_late_refunds,
    release_expired_holds,
    settle_ctes,
)
from keys.models import ApiKey

from .models import CANCELLED, MinerResponse, Request

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
    key_name: str = ""
    key_prefix: str = ""
    user_id: int | None = None
    messages: list = field(default_factory=list)
    strategy: str = ""
    status: int = 200
    api_error: str = ""
    credits_charged: int = 0
    elapsed_ms: float = 0.0
    client_ip: str | None = None
    client_request_id: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    miners: list[MinerLog] = field(default_factory=list)

    def without_texts(self, *, owner: bool = True) -> RequestLog:
        """This log with what clients and miners wrote left out (and, with
        ``owner=False``, its key and user): what is kept when the database
        refuses the full record."""
        note = "not logged: the database refused the record"
        # CANCELLED is ours, not a miner's text: kept, so the call still counts as neither.
        miners = [
            replace(m, response="", error=m.error if m.error == CANCELLED else m.error and note) for m in self.miners
        ]
        kept = {} if owner else {"key_id": None, "user_id": None}
        return replace(self, messages=[], miners=miners, **kept)


async def write_request_log(entry: RequestLog, settlement: Settlement | None, *, replace: bool = False) -> None:
    """``record_request`` (or, with ``replace``, ``rewrite_request``) for
    async code: on PostgreSQL from the event loop when the server gave it a
    pool. A statement the database refuses changes nothing, so it is tried
    once more without the texts (or, for a key deleted meanwhile, without
    the key): the request and its charge are not lost to what a client or
    miner sent."""
    try:
        await _awrite(entry, settlement, replace)
    except (DataError, IntegrityError) as exc:
        log.warning("the log of %s was refused (%s); writing it without its texts", entry.id, type(exc).__name__)
        await _awrite(entry.without_texts(owner=isinstance(exc, DataError)), settlement, replace)


async def _awrite(entry: RequestLog, settlement: Settlement | None, replace: bool) -> None:
    if on_postgresql():
        await asyncdb.execute(*_statement(entry, settlement, replace=replace))
    else:
        await run_db(rewrite_request if replace else record_request, entry, settlement)


def record_request(entry: RequestLog, settlement: Settlement | None = None) -> None:
    """Write the request's log and, with it, settle its credits."""
    if on_postgresql():
        _write_in_one_statement(entry, settlement, replace=False)
        return
    with transaction.atomic():
        _insert_with_the_orm(entry)
        _settle_with_the_orm(settlement)


def rewrite_request(entry: RequestLog, settlement: Settlement | None = None) -> None:
    """Replace a request logged early (a stream, from its first content on)
    with its final state. If the early write never landed, the request is
    written anew and ``settlement`` applied; otherwise it was applied then."""
    if on_postgresql():
        _write_in_one_statement(entry, settlement, replace=True)
        return
    with transaction.atomic():
        MinerResponse.objects.filter(request_id=entry.id).delete()
        existed = Request.objects.filter(pk=entry.id).delete()[0] > 0
        _insert_with_the_orm(entry)
        if not existed:
            _settle_with_the_orm(settlement)


REQUEST_FIELDS = [
    "id", "key", "key_name", "key_prefix", "user", "route", "messages", "strategy", "status", "api_error",
    "credits_charged", "started_at", "elapsed_ms", "client_ip", "client_request_id", "prompt_tokens",
    "completion_tokens",
]  # fmt: skip
MINER_FIELDS = ["request", "uid", "hotkey", "is_success", "response", "error", "status", "response_ms"]


def _write_sql(*, replace: bool, settle: bool, durable: bool) -> str:
    """The request row, its miner rows and (``settle``) the key's settlement
    in one statement. ``replace``: an earlier version of the request goes
    (its miner rows deleted, its row updated) — the statement's parts all see
    the tables as they were before it. The settlement's UPDATE runs only if
    the request row was inserted by this statement (``xmax = 0``), not
    updated. Not ``durable``: the commit doesn't wait for the disk
    (LOG_SYNCHRONOUS_COMMIT); the request row's RETURNING, computed for
    every statement, sets that."""
    request_table, miner_table = table(Request), table(MinerResponse)
    request_fk = column(MinerResponse, "request")
    final = (
        "status", "api_error", "credits_charged", "elapsed_ms", "strategy", "messages", "prompt_tokens",
        "completion_tokens",
    )  # fmt: skip
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (column(Request, f) for f in final))
    settled = settle_ctes("EXISTS (SELECT 1 FROM saved WHERE inserted)")
    return (
        (f"WITH gone AS (DELETE FROM {miner_table} WHERE {request_fk} = %s), " if replace else "WITH ")
        + f"saved AS (INSERT INTO {request_table} ({columns(Request, REQUEST_FIELDS)}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s::inet, %s, %s, %s)"
        + (f" ON CONFLICT ({column(Request, 'id')}) DO UPDATE SET {updates}" if replace else "")
        + " RETURNING (xmax = 0) AS inserted"
        + ("" if durable else f", {asyncdb.ASYNC_COMMIT} AS commit_mode")
        + ")"
        + (f", {settled}" if settle else "")
        + f" INSERT INTO {miner_table} ({columns(MinerResponse, MINER_FIELDS)}) "
        "SELECT %s, * FROM unnest(%s::int[], %s::text[], %s::bool[], %s::text[], %s::text[], %s::int[], %s::float8[])"
    )


_SQL = {
    (r, s, d): _write_sql(replace=r, settle=s, durable=d)
    for r in (False, True)
    for s in (False, True)
    for d in (False, True)
}


def _write_in_one_statement(entry: RequestLog, settlement: Settlement | None, *, replace: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(*_statement(entry, settlement, replace=replace))


def _statement(entry: RequestLog, settlement: Settlement | None, *, replace: bool) -> tuple[str, list]:
    miners = entry.miners
    params = [
        entry.id, entry.key_id, entry.key_name, entry.key_prefix, entry.user_id, entry.route, _jsonb(entry.messages),
        entry.strategy,
        entry.status, entry.api_error, entry.credits_charged, entry.started_at, entry.elapsed_ms, entry.client_ip,
        entry.client_request_id, entry.prompt_tokens, entry.completion_tokens,
    ]  # fmt: skip
    if replace:  # the DELETE of the old miner rows comes first
        params.insert(0, entry.id)
    if settlement is not None:
        params += settlement.params()
    params += [
        entry.id, [m.uid for m in miners], [_text(m.hotkey) for m in miners], [m.is_success for m in miners],
        [_text(m.response) for m in miners], [_text(m.error) for m in miners], [m.status for m in miners],
        [m.response_ms for m in miners],
    ]  # fmt: skip
    return _SQL[replace, settlement is not None, settings.LOG_SYNCHRONOUS_COMMIT], params


def _text(text: str | None) -> str | None:
    """PostgreSQL text can't hold NUL characters; a miner's answer may."""
    return text.replace("\x00", "") if text and "\x00" in text else text


def _jsonb(value) -> str:
    """JSON for a jsonb column, which refuses the \\u0000 escape a client's message may hold."""
    dumped = orjson.dumps(value).decode()
    return orjson.dumps(_without_nul(value)).decode() if "\\u0000" in dumped else dumped


def _without_nul(value):
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_text(k): _without_nul(v) for k, v in value.items()}
    return value


def _settle_with_the_orm(settlement: Settlement | None) -> None:
    if settlement is not None:
        apply_settlement(settlement)


def _insert_with_the_orm(entry: RequestLog) -> None:
    with transaction.atomic():
        request = Request.objects.create(
            id=entry.id,
            key_id=entry.key_id,
            key_name=entry.key_name,
            key_prefix=entry.key_prefix,
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
            client_request_id=entry.client_request_id,
            prompt_tokens=entry.prompt_tokens,
            completion_tokens=entry.completion_tokens,
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


# --- calls nobody finished ----------------------------------------------------------

ABANDONED = "Abandoned"


def sweep_credits(now=None) -> tuple[list[ReleasedHold], list[tuple[int, int, int]]]:
    """Holds past their deadline released, then late refunds of revoked keys moved on."""
    return release_abandoned_calls(now), forward_late_refunds()


def release_abandoned_calls(now=None) -> list[ReleasedHold]:
    """Give back the credits of calls whose server died before settling
    them, and log each such call once, as abandoned with nothing charged
    (unless its log was written after all)."""
    return release_expired_holds(record=_record_abandoned, now=now)


def _record_abandoned(hold: ReleasedHold) -> None:
    if Request.objects.filter(pk=hold.request_id).exists():
        return
    key = ApiKey.objects.filter(pk=hold.key_id).first()  # None: deleted since
    Request.objects.create(
        id=hold.request_id,
        key=key,
        key_name=key.name if key else "",
        key_prefix=key.prefix if key else "",
        route="",
        status=500,
        api_error=ABANDONED,
        credits_charged=0,
        started_at=hold.held_at,
        elapsed_ms=0,
    )
