"""/api/admin/stats/: the dashboard's figures as JSON over a chosen window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ApiKeyFactory, MinerResponseFactory, RequestLogFactory


@pytest.fixture
def day_of_traffic(postgres):
    now = timezone.now()
    key = ApiKeyFactory(name="acme")
    for i, elapsed in enumerate([100.0, 200.0, 300.0, 400.0]):
        request = RequestLogFactory(
            key=key,
            started_at=now - timedelta(minutes=10 + i),
            elapsed_ms=elapsed,
            prompt_tokens=9,
            completion_tokens=i,
        )
        MinerResponseFactory(request=request, uid=3, hotkey="5Miner3", is_success=True, response_ms=50.0)
    failed = RequestLogFactory(key=key, started_at=now - timedelta(hours=5), status=502, credits_charged=0)
    MinerResponseFactory(request=failed, uid=4, hotkey="5Miner4", is_success=False)
    RequestLogFactory(key=key, started_at=now - timedelta(days=3))  # outside 24h, inside 7d
    return key


def test_stats_over_the_last_hour(admin_api, day_of_traffic):
    r = admin_api.get("/api/admin/stats/", {"window": "1h"})
    assert r.status_code == 200
    body = r.json()
    assert (body["window"], body["bucket"]) == ("1h", "minute")
    assert (body["requests"], body["successes"], body["success_rate"], body["credits_spent"]) == (4, 4, 1.0, 4)
    assert (body["p50_ms"], body["p95_ms"]) == (250.0, 385.0)
    assert body["top_miners"] == [
        {"uid": 3, "hotkey": "5Miner3", "requests": 4, "cancelled": 0, "success_rate": 1.0, "p50_ms": 50.0}
    ]
    assert body["top_keys"][0]["prefix"] == day_of_traffic.prefix
    assert (body["prompt_tokens"], body["completion_tokens"], body["top_keys"][0]["tokens"]) == (36, 6, 42)
    assert sum(point["requests"] for point in body["series"]) == 4


def test_wider_windows_take_in_more(admin_api, day_of_traffic):
    day = admin_api.get("/api/admin/stats/").json()  # 24h by default
    assert (day["window"], day["requests"], day["success_rate"]) == ("24h", 5, 0.8)
    assert {m["uid"] for m in day["top_miners"]} == {3, 4}
    assert admin_api.get("/api/admin/stats/", {"window": "7d"}).json()["requests"] == 6


def test_an_unknown_window_is_400(admin_api, db):
    r = admin_api.get("/api/admin/stats/", {"window": "1y"})
    assert r.status_code == 400
    assert "window" in r.json()["errors"]
