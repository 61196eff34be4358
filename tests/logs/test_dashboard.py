"""The dashboard on the admin index: figures and charts for a window."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import ApiKeyFactory, MinerResponseFactory, RequestLogFactory


@pytest.fixture
def traffic(postgres):
    key = ApiKeyFactory(name="top partner")
    now = timezone.now()
    for minutes in (5, 10, 15):
        r = RequestLogFactory(key=key, started_at=now - timedelta(minutes=minutes), credits_charged=2, elapsed_ms=100)
        MinerResponseFactory(request=r, uid=7, hotkey="5SevenHotkey", response_ms=90)
    RequestLogFactory(key=key, status=502, api_error="AllMinersFailed", credits_charged=0, started_at=now)
    RequestLogFactory(key=key, started_at=now - timedelta(days=3))
    return key


def test_index_shows_the_figures_of_the_last_day(console, traffic):
    page = console.get("/admin/").text
    assert "Traffic, last 24h" in page
    assert '<span class="figure">4</span><span class="label">Requests</span>' in page
    assert '<span class="figure">75.0%</span>' in page
    assert '<span class="figure">6</span><span class="label">Credits spent</span>' in page
    assert "top partner" in page
    assert "5SevenHotkey"[:13] in page


def test_charts_are_inline_svg_with_a_bar_per_bucket(console, traffic):
    page = console.get("/admin/?window=24h").text
    requests_chart = re.search(r'<svg class="series-chart" data-series="requests" data-total="(\d+)"', page)
    errors_chart = re.search(r'<svg class="series-chart" data-series="errors" data-total="(\d+)"', page)
    assert (requests_chart.group(1), errors_chart.group(1)) == ("4", "1")
    assert len(re.findall(r'<rect class="bar-requests"', page)) in (24, 25)
    # Nothing drawn from another site: a closed network still gets its charts.
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)


def test_window_switcher_changes_the_figures(console, traffic):
    week = console.get("/admin/?window=7d").text
    assert "Traffic, last 7d" in week
    assert '<span class="figure">5</span><span class="label">Requests</span>' in week
    assert 'aria-current="page">7d<' in week
    hour = console.get("/admin/?window=1h").text
    assert len(re.findall(r'<rect class="bar-requests"', hour)) in (60, 61)
    assert "Traffic, last 24h" in console.get("/admin/?window=forever").text


def test_dashboard_queries_do_not_grow_with_traffic(console, traffic, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        console.get("/admin/?window=30d")
