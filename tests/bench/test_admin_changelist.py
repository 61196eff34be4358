"""The operator's console on a big log: the request changelist (and the
dashboard) with 100,000 request rows must render in under 500 ms."""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests.factories import ApiKeyFactory, UserFactory

from .conftest import report

ROWS = 100_000
BUDGET_MS = 500
RUNS = 7
COLUMNS = "id, key_id, route, messages, strategy, status, api_error, credits_charged, started_at, elapsed_ms"
OUTCOMES = [(200, ""), (200, ""), (200, ""), (200, ""), (429, "RateLimitExceeded"), (502, "AllMinersFailed")]


def fill_requests(key_ids: list[int]) -> float:
    """ROWS requests over the last 30 days, written with COPY; returns seconds taken."""
    started = time.perf_counter()
    now = timezone.now()
    rnd = random.Random(7)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY logs_request ({COLUMNS}) FROM STDIN") as copy:
        for i in range(ROWS):
            status, code = rnd.choice(OUTCOMES)
            messages = json.dumps([{"role": "user", "content": f"question number {i}"}])
            moment = now - timedelta(seconds=rnd.randrange(30 * 86400))
            copy.write_row(
                (
                    uuid.uuid4(),
                    rnd.choice(key_ids),
                    "/chat",
                    messages,
                    "top_n:3",
                    status,
                    code,
                    int(status == 200),
                    moment,
                    rnd.uniform(40, 900),
                )
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE logs_request")
    return time.perf_counter() - started


def timed_get(client: Client, url: str) -> list[float]:
    client.get(url)  # warm: templates compiled, connections open
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return times


@pytest.fixture
def big_log(transactional_db):
    if connection.vendor != "postgresql":
        pytest.fail("benchmarks need PostgreSQL (DATABASE_URL)")
    keys = [ApiKeyFactory(name=f"bench {i}").pk for i in range(20)]
    seconds = fill_requests(keys)
    report("admin_bulk_insert", rows=ROWS, seconds=round(seconds, 2))
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_request_changelist_with_100k_rows_renders_under_500ms(big_log):
    pages = {
        "admin_request_changelist": "/admin/logs/request/",
        "admin_request_changelist_filtered": "/admin/logs/request/?status=4xx&route=/chat",
        "admin_dashboard_24h": "/admin/?window=24h",
        "admin_dashboard_30d": "/admin/?window=30d",
    }
    medians = {}
    for name, url in pages.items():
        times = timed_get(big_log, url)
        medians[name] = statistics.median(times)
        report(name, rows=ROWS, median_ms=round(medians[name], 1), max_ms=round(max(times), 1), runs=RUNS)
    assert medians["admin_request_changelist"] < BUDGET_MS
    assert medians["admin_request_changelist_filtered"] < BUDGET_MS
