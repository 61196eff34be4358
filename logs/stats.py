"""Figures about traffic for the operator's dashboard (and /api/admin/stats/):
request counts, success rate, credits, latency percentiles, the busiest keys
and miners, and requests/errors over time.

Each figure is one aggregate query, whatever the size of the log table:
percentiles are Postgres's ``percentile_cont``; on SQLite (a laptop) the
overall ones are read by offset and the per-group ones are left out (None).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from .models import IS_CANCELLED, MinerResponse, Request

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_WINDOW = "24h"
# Chart buckets: a one-hour window in hours would be one or two bars.
BUCKETS: dict[str, str] = {"1h": "minute", "24h": "hour", "7d": "day", "30d": "day"}
TOP = 10

SUCCESS = Q(status__gte=200, status__lt=300)
ERROR = Q(status__gte=400)


class PercentileCont(Aggregate):
    """Postgres's ordered-set aggregate: the interpolated ``fraction``
    percentile of an expression."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        # A float we own, so it may be written into the SQL.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def _has_percentiles() -> bool:
    return connection.vendor == "postgresql"


def _percentile_by_offset(rows: QuerySet, field: str, fraction: float, count: int) -> float | None:
    """percentile_cont without the database's help: the two neighbouring
    values, read by offset in one query, interpolated."""
    if count == 0:
        return None
    position = fraction * (count - 1)
    low = int(position)
    values = list(rows.order_by(field).values_list(field, flat=True)[low : low + 2])
    if len(values) == 1:
        return float(values[0])
    return float(values[0] + (values[1] - values[0]) * (position - low))


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def window_start(window: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``(since, now)`` for a window name; ValueError for an unknown one."""
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; use one of {', '.join(WINDOWS)}")
    now = now or timezone.now()
    return now - WINDOWS[window], now


def dashboard_stats(window: str = DEFAULT_WINDOW, *, now: datetime | None = None) -> dict:
    """Every dashboard figure for the requests started in the last ``window``.

    ``series`` has one point per bucket (a minute for 1h, an hour for 24h, a
    day for 7d and 30d), empty buckets included, oldest first.
    """
    since, now = window_start(window, now)
    requests = Request.objects.filter(started_at__gte=since, started_at__lte=now)

    totals = _totals(requests)
    return {
        "window": window,
        "since": since.isoformat(),
        "bucket": BUCKETS[window],
        **totals,
        "top_keys": _top_keys(requests),
        "top_miners": _top_miners(since, now),
        "series": _series(requests, BUCKETS[window], since, now),
    }


def _totals(requests: QuerySet) -> dict:
    figures: dict[str, Any] = {
        "requests": Count("pk"),
        "successes": Count("pk", filter=SUCCESS),
        "credits_spent": Sum("credits_charged"),
        "prompt_tokens": Sum("prompt_tokens"),
        "completion_tokens": Sum("completion_tokens"),
    }
    if _has_percentiles():
        figures["p50_ms"] = PercentileCont("elapsed_ms", 0.5)
        figures["p95_ms"] = PercentileCont("elapsed_ms", 0.95)
    row = requests.aggregate(**figures)
    if not _has_percentiles():
        row["p50_ms"] = _percentile_by_offset(requests, "elapsed_ms", 0.5, row["requests"])
        row["p95_ms"] = _percentile_by_offset(requests, "elapsed_ms", 0.95, row["requests"])
    return {
        "requests": row["requests"],
        "successes": row["successes"],
        "success_rate": _rate(row["successes"], row["requests"]),
        "credits_spent": row["credits_spent"] or 0,
        "prompt_tokens": row["prompt_tokens"] or 0,
        "completion_tokens": row["completion_tokens"] or 0,
        "p50_ms": _round(row["p50_ms"]),
        "p95_ms": _round(row["p95_ms"]),
    }


def _top_keys(requests: QuerySet) -> list[dict]:
    rows = (
        requests.filter(key__isnull=False)
        .values("key_id")
        .annotate(
            name=F("key__name"),
            prefix=F("key__prefix"),
            requests=Count("pk"),
            credits=Sum("credits_charged"),
            tokens=Sum(Coalesce("prompt_tokens", 0) + Coalesce("completion_tokens", 0)),
        )
        .order_by("-requests", "key_id")[:TOP]
    )
    return [
        {
            "key_id": row["key_id"],
            "name": row["name"],
            "prefix": row["prefix"],
            "requests": row["requests"],
            "credits": row["credits"] or 0,
            "tokens": row["tokens"] or 0,
        }
        for row in rows
    ]


def _miner_rows(since: datetime, now: datetime | None, group: tuple[str, ...]) -> QuerySet:
    answers = MinerResponse.objects.filter(request__started_at__gte=since)
    if now is not None:
        answers = answers.filter(request__started_at__lte=now)
    figures: dict[str, Any] = {
        "requests": Count("pk"),
        "successes": Count("pk", filter=Q(is_success=True)),
        "cancelled": Count("pk", filter=IS_CANCELLED),
    }
    if _has_percentiles():
        # A cancelled call has no answer time (it was never waited for).
        figures["p50"] = PercentileCont("response_ms", 0.5, filter=~IS_CANCELLED)
    return answers.values(*group).annotate(**figures)


def _miner_figures(row: dict) -> dict:
    """A miner's figures from its row: a cancelled call (another miner answered
    first) neither succeeded nor failed, so the rate leaves it out; it is
    counted in ``requests`` and on its own in ``cancelled``."""
    return {
        "requests": row["requests"],
        "cancelled": row["cancelled"],
        "success_rate": _rate(row["successes"], row["requests"] - row["cancelled"]),
        "p50_ms": _round(row.get("p50")),
    }


def _top_miners(since: datetime, now: datetime) -> list[dict]:
    rows = _miner_rows(since, now, ("uid", "hotkey")).order_by("-requests", "uid")[:TOP]
    return [{"uid": row["uid"], "hotkey": row["hotkey"], **_miner_figures(row)} for row in rows]


def miner_stats(since: datetime) -> dict[str, dict]:
    """hotkey -> its calls since ``since``: ``requests`` (miner calls, the
    cancelled ones included), ``cancelled``, ``success_rate`` (None when
    every call was cancelled) and ``p50_ms`` (None without Postgres). One query."""
    return {row["hotkey"]: _miner_figures(row) for row in _miner_rows(since, None, ("hotkey",)).order_by()}


_STEPS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def _floor(moment: datetime, bucket: str) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if bucket in ("hour", "day"):
        moment = moment.replace(minute=0)
    if bucket == "day":
        moment = moment.replace(hour=0)
    return moment


def _series(requests: QuerySet, bucket: str, since: datetime, now: datetime) -> list[dict]:
    counted = (
        requests.annotate(t=Trunc("started_at", bucket, tzinfo=UTC))
        .values("t")
        .annotate(requests=Count("pk"), errors=Count("pk", filter=ERROR))
        .order_by("t")
    )
    found = {_floor(row["t"], bucket): row for row in counted}
    points = []
    moment, last, step = _floor(since, bucket), _floor(now, bucket), _STEPS[bucket]
    while moment <= last:
        row = found.get(moment, {})
        points.append({"t": moment.isoformat(), "requests": row.get("requests", 0), "errors": row.get("errors", 0)})
        moment += step
    return points
