"""Rate limits as API clients see them: 429 with Retry-After, nothing
charged, no miner called, and the x-ratelimit headers on every answer."""

from __future__ import annotations

import asyncio
import uuid

import openai
import pytest

from endpoint.core.config import do_set_config
from endpoint.core.db import run_db
from keys.credits import audit_credits, open_holds
from keys.models import ApiKey, CreditEntry
from keys.rate_limits import do_add_rate_limit
from keys.services import do_create_key
from logs.models import Request

from .conftest import HELLO, bearer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def limited(network, redis_url):
    """Rate limiting on, with a fresh key (fresh counters) limited to 2 calls a minute."""
    do_set_config("rate_limiting_enabled", "true")
    do_set_config("global_rate_limits", '[{"times": 100, "seconds": 60}]')
    new = do_create_key(name=f"limited-{uuid.uuid4().hex[:6]}", credits=100)
    do_add_rate_limit(2, 60, key=new.key)
    return new


async def test_third_call_in_a_minute_gets_429_uncharged(api, limited, network):
    for remaining in (1, 0):
        ok = await api.post("/chat", json={"messages": HELLO}, headers=bearer(limited))
        assert ok.status_code == 200
        assert ok.headers["x-ratelimit-limit-requests"] == "2"
        assert ok.headers["x-ratelimit-remaining-requests"] == str(remaining)
        assert ok.headers["x-ratelimit-reset-requests"]
    calls_before = len(network.miners[0].seen)
    r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(limited))
    assert r.status_code == 429
    assert r.json()["code"] == "RateLimitExceeded"
    assert 55 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(network.miners[0].seen) == calls_before  # no miner called
    assert (await run_db(ApiKey.objects.get, pk=limited.key.pk)).credits == 98
    assert await run_db(lambda: Request.objects.filter(status=429, api_error="RateLimitExceeded").count()) == 1
    # The count runs beside the credit hold: a refused call's hold is given back with its log.
    assert await run_db(open_holds) == (0, 0)
    assert await run_db(audit_credits) == []


async def test_a_client_refused_lately_holds_nothing_on_its_next_calls(api, limited, network):
    for _ in range(3):
        await api.post("/chat", json={"messages": HELLO}, headers=bearer(limited))
    entries = await run_db(CreditEntry.objects.filter(key=limited.key).count)
    for _ in range(3):
        r = await api.post("/v1/chat/completions", json={"model": "auto", "messages": HELLO}, headers=bearer(limited))
        assert r.status_code == 429
    assert await run_db(CreditEntry.objects.filter(key=limited.key).count) == entries
    assert (await run_db(ApiKey.objects.get, pk=limited.key.pk)).credits == 98


@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions"])
async def test_over_the_limit_a_bad_body_still_gets_429(api, limited, network, path):
    for _ in range(2):
        await api.post("/chat", json={"messages": HELLO}, headers=bearer(limited))
    r = await api.post(path, json={"messages": "not a list", "model": 7}, headers=bearer(limited))
    assert r.status_code == 429
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    assert await run_db(lambda: Request.objects.filter(status=429).count()) == 1


async def test_concurrent_calls_pass_exactly_the_limit(api, limited, network):
    responses = await asyncio.gather(
        *(api.post("/chat", json={"messages": HELLO}, headers=bearer(limited)) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [200, 200] + [429] * 8


def test_openai_client_raises_rate_limit_error(live_server_url, limited, network):
    api = openai.OpenAI(base_url=live_server_url + "/v1", api_key=limited.raw, max_retries=0)
    api.chat.completions.create(model="auto", messages=HELLO)
    api.chat.completions.create(model="auto", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as info:
        api.chat.completions.create(model="auto", messages=HELLO)
    assert info.value.code == "RateLimitExceeded"
    assert int(info.value.response.headers["retry-after"]) >= 1


async def test_limits_off_means_no_limit_headers(api, key, network):
    r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(key))
    assert r.status_code == 200
    assert "x-ratelimit-limit-requests" not in r.headers
