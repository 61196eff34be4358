"""Rate limits as API clients see them: 429 with Retry-After, nothing
charged, no miner called, and the x-ratelimit headers on every answer."""

from __future__ import annotations

import asyncio
import uuid

import openai
import pytest

from endpoint.core.config import do_set_config
from endpoint.core.db import run_db
from keys.models import ApiKey
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
