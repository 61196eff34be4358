"""The dashboard's figures, computed by the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from logs.stats import WINDOWS, dashboard_stats, miner_stats
from tests.factories import ApiKeyFactory, MinerResponseFactory, RequestLogFactory


@pytest.fixture
def now():
    return timezone.now().replace(minute=30, second=0, microsecond=0)


def test_figures_count_only_the_window(postgres, now):
    key = ApiKeyFactory(name="busy")
    for ms in (100, 200, 300, 400):
        RequestLogFactory(
            key=key,
            started_at=now - timedelta(minutes=10),
            elapsed_ms=ms,
            credits_charged=2,
            prompt_tokens=10,
            completion_tokens=5,
        )
    RequestLogFactory(key=key, status=502, api_error="", started_at=now - timedelta(minutes=5), credits_charged=0)
    RequestLogFactory(key=key, started_at=now - timedelta(days=3))  # outside 24h

    stats = dashboard_stats("24h", now=now)

    assert stats["requests"] == 5
    assert stats["successes"] == 4
    assert stats["success_rate"] == pytest.approx(0.8)
    assert stats["credits_spent"] == 8
    assert stats["p50_ms"] == pytest.approx(200.0)
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (40, 20)  # the failure has none
    top = {"key_id": key.pk, "name": "busy", "prefix": key.prefix, "requests": 5, "credits": 8, "tokens": 60}
    assert stats["top_keys"][0] == top
    assert dashboard_stats("7d", now=now)["requests"] == 6


def test_series_has_every_bucket_with_errors_counted(postgres, now):
    RequestLogFactory(started_at=now - timedelta(hours=2))
    RequestLogFactory(started_at=now - timedelta(hours=2), status=429, api_error="RateLimitExceeded")

    series = dashboard_stats("24h", now=now)["series"]

    assert len(series) in (24, 25)
    busy = [p for p in series if p["requests"]]
    assert busy == [{"t": busy[0]["t"], "requests": 2, "errors": 1}]
    assert len(dashboard_stats("30d", now=now)["series"]) in (30, 31)


def test_top_miners_and_miner_stats(postgres, now):
    request = RequestLogFactory(started_at=now - timedelta(minutes=1))
    for ms, ok in ((50, True), (150, True), (250, False)):
        MinerResponseFactory(request=request, uid=3, hotkey="5Fast", is_success=ok, response_ms=ms)
    MinerResponseFactory(request=request, uid=4, hotkey="5Slow", is_success=False, response_ms=900)

    top = dashboard_stats("1h", now=now)["top_miners"]
    assert top[0] == {
        "uid": 3,
        "hotkey": "5Fast",
        "requests": 3,
        "cancelled": 0,
        "success_rate": pytest.approx(2 / 3),
        "p50_ms": 150.0,
    }

    by_hotkey = miner_stats(now - timedelta(hours=24))
    assert by_hotkey["5Slow"] == {"requests": 1, "cancelled": 0, "success_rate": 0.0, "p50_ms": 900.0}


def test_empty_log_and_unknown_window(postgres):
    stats = dashboard_stats("1h")
    assert (stats["requests"], stats["success_rate"], stats["p50_ms"], stats["top_keys"]) == (0, None, None, [])
    assert set(WINDOWS) == {"1h", "24h", "7d", "30d"}
    with pytest.raises(ValueError):
        dashboard_stats("2y")
