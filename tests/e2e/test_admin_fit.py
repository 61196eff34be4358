"""The console in Chromium at a laptop's 1280 px and a desktop's 1440 px:
every page fits the window (no sideways scrolling, in the page or in a list)
and the columns an operator reads last are on screen; a screenshot of each
page is kept in the test's tmp_path. The request logs' key and date filters
are used as an operator would."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from endpoint.core.models import EndpointConfig, Neuron
from endpoint.core.redis_clients import close_async_redis
from endpoint.network.minerstats import CallRecord, miner_book
from tests.e2e.test_admin_console import PASSWORD, sign_in
from tests.factories import ApiKeyFactory, MinerResponseFactory, RequestLogFactory

pytestmark = pytest.mark.django_db(transaction=True)

LONG_PROMPT = "Explain, step by step and with examples, " + "why the sky looks blue at noon and red at dusk " * 12
LONG_NAME = "partner with a rather long descriptive name for its key"


def record_live_calls(hotkeys: list[str]) -> None:
    """Routing figures in Redis, as the gateway leaves them (on a thread:
    Playwright's loop runs in this one)."""

    async def calls() -> None:
        for hotkey in hotkeys:
            CallRecord(hotkey, 5.0).failed("miner answered HTTP 500")
            CallRecord(hotkey, 5.0).succeeded(1234.5678)
        await miner_book().flush()
        await close_async_redis()

    miner_book().clear()
    thread = threading.Thread(target=asyncio.run, args=(calls(),))
    thread.start()
    thread.join()


@pytest.fixture
def busy_console():
    """A console with the widest rows it shows: long names and prompts, big
    numbers, an expired key, miners with a day's and live figures."""
    get_user_model().objects.create_superuser("operator", "op@example.com", PASSWORD)
    now = timezone.now()
    key = ApiKeyFactory(name=LONG_NAME, credits=123_456_789, api_request_count=987_654, last_used_at=now)
    ApiKeyFactory(name="expired " + LONG_NAME, expires_at=now - timedelta(days=1), last_used_at=now)
    neurons = [
        Neuron.objects.create(
            netuid=1, uid=uid, hotkey=f"5Hot{uid:044d}", axon=f"203.0.113.{uid}:19100", incentive=7.015835999936826
        )
        for uid in range(12)
    ]
    for n in range(30):
        log = RequestLogFactory(
            key=key,
            route="/v1/chat/completions",
            status=502,
            api_error="AllMinersFailed",
            credits_charged=1_000_000,
            elapsed_ms=12345.678901,
            messages=[{"role": "user", "content": LONG_PROMPT}],
            started_at=now - timedelta(minutes=n),
        )
        for neuron in neurons[:3]:
            MinerResponseFactory(request=log, uid=neuron.uid, hotkey=neuron.hotkey, response="x" * 600)
    record_live_calls([n.hotkey for n in neurons])
    return {"key": key, "log": log}


def fits(page) -> dict:
    return page.evaluate(
        """() => {
            const results = document.querySelector('#changelist .results');
            return {
                page: document.documentElement.scrollWidth,
                window: window.innerWidth,
                list: results ? results.scrollWidth - results.clientWidth : 0,
                columns: [...document.querySelectorAll('#result_list thead th')].map(
                    (th) => `${th.className.split(' ')[0]}:${Math.round(th.getBoundingClientRect().width)}`),
            };
        }"""
    )


@pytest.mark.parametrize("width", [1280, 1440])
def test_every_console_page_fits_the_window(page, live_server_url, busy_console, tmp_path, width):
    page.set_viewport_size({"width": width, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server_url, "operator")
    key, log = busy_console["key"], busy_console["log"]
    pages = {
        "index": ("/admin/", []),
        "keys": ("/admin/keys/apikey/", ["credits_left", "state", "calls", "last_used"]),
        "key": (f"/admin/keys/apikey/{key.pk}/change/", []),
        "requests": ("/admin/logs/request/", ["credits", "elapsed", "prompt"]),
        "request": (f"/admin/logs/request/{log.pk}/change/", []),
        "neurons": ("/admin/endpoint/neuron/", ["p50_24h", "calls_24h", "live_routing", "active"]),
        "config": (f"/admin/endpoint/endpointconfig/{EndpointConfig.load().pk}/change/", []),
    }
    for name, (url, columns) in pages.items():
        assert page.goto(live_server_url + url).status == 200, name
        shot = tmp_path / f"{name}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0
        measured = fits(page)
        assert measured["page"] <= measured["window"], (name, measured)
        assert measured["list"] <= 0, f"{name}: {measured}"
        for column in columns:
            box = page.locator(f"#result_list th.column-{column}").bounding_box()
            assert box is not None and box["x"] + box["width"] <= width, (name, column, box)
    assert errors == []  # no page's script failed


def test_the_key_and_date_filters_narrow_the_request_list(page, live_server_url, busy_console):
    needle = ApiKeyFactory(name="needle in the haystack")
    RequestLogFactory(key=needle, started_at=timezone.now() - timedelta(days=3))
    sign_in(page, live_server_url, "operator")
    page.goto(live_server_url + "/admin/logs/request/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(31)

    page.locator("#key-filter + .select2 .select2-selection").click()
    page.locator(".select2-search__field").fill("needle")
    page.locator(".select2-results__option", has_text="needle in the haystack").click()
    page.wait_for_url(re.compile(rf"key__id__exact={needle.pk}"))
    expect(rows).to_have_count(1)
    expect(page.locator("#key-filter + .select2")).to_contain_text("needle in the haystack")

    page.goto(live_server_url + "/admin/logs/request/")
    today = timezone.localdate()
    page.locator('input[name="started_at__range__gte"]').fill((today - timedelta(days=1)).isoformat())
    page.locator('input[name="started_at__range__lte"]').fill(today.isoformat())
    page.locator('.admindatefilter input[type="submit"]').click()
    page.wait_for_url(re.compile("started_at__range__gte="))
    expect(rows).to_have_count(30)  # not the needle's, three days ago
