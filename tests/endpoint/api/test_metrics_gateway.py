"""GET /metrics as a Prometheus scrape sees it: API calls by route, status
and error code, miner latency by uid, credits spent, rate-limit rejections,
and the metagraph's age and size. (Several processes: test_prod_server.)"""

from __future__ import annotations

import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from endpoint.core.config import do_set_config
from endpoint.network.minerstats import miner_book
from keys.rate_limits import do_add_rate_limit
from keys.services import do_create_key

from .conftest import HELLO, bearer

pytestmark = pytest.mark.django_db(transaction=True)


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


async def scrape(api) -> dict:
    r = await api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


async def test_a_chat_call_is_counted_with_its_miners_and_credits(api, key, network):
    network.set_behaviour(1, mode="error")
    before = await scrape(api)
    r = await api.post(
        "/chat", json={"messages": HELLO, "uids": [0, 1], "respond_on_first_success": False}, headers=bearer(key)
    )
    assert r.status_code == 200
    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("vep_requests_total", route="/chat", status="200", code="") == 1
    assert delta("vep_credits_spent_total", route="/chat") == 1
    assert delta("vep_miner_responses_total", uid="0", result="ok") == 1
    assert delta("vep_miner_responses_total", uid="1", result="failed") == 1
    assert delta("vep_miner_response_seconds_count", uid="0") == 1
    answered_ms = r.json()["choices"][0]["response_ms"]
    assert delta("vep_miner_response_seconds_sum", uid="0") == pytest.approx(answered_ms / 1000, abs=0.001)
    assert delta("vep_miner_response_seconds_bucket", uid="0", le="+Inf") == 1


async def test_errors_are_counted_by_code(api, network):
    before = await scrape(api)
    assert (await api.post("/chat", json={"messages": HELLO})).status_code == 401
    assert (await api.get("/v1/models", headers={"Authorization": "Bearer vep_nope"})).status_code == 401
    after = await scrape(api)
    labels = {"route": "/chat", "status": "401", "code": "APIKeyMissing"}
    assert value(after, "vep_requests_total", **labels) - value(before, "vep_requests_total", **labels) == 1
    labels = {"route": "/v1/models", "status": "401", "code": "APIKeyInvalid"}
    assert value(after, "vep_requests_total", **labels) - value(before, "vep_requests_total", **labels) == 1


@pytest.fixture
def limited(network, redis_url):
    """Rate limiting on, a fresh key allowed one call a minute."""
    do_set_config("rate_limiting_enabled", "true")
    new = do_create_key(name=f"limited-{uuid.uuid4().hex[:6]}", credits=10)
    do_add_rate_limit(1, 60, key=new.key)
    return new


async def test_rate_limit_rejections_are_counted(api, limited):
    before = await scrape(api)
    statuses = [(await api.post("/chat", json={"messages": HELLO}, headers=bearer(limited))).status_code for _ in "abc"]
    assert statuses == [200, 429, 429]
    after = await scrape(api)
    name = "vep_rate_limit_rejections_total"
    assert value(after, name, route="/chat") - value(before, name, route="/chat") == 2


async def test_metagraph_age_and_size(api, network):
    current = await scrape(api)
    assert value(current, "vep_metagraph_neurons") == 8
    assert value(current, "vep_metagraph_serving") == 8
    assert 0 <= value(current, "vep_metagraph_age_seconds") < 60


async def test_scrape_token_when_configured(api, network, settings):
    settings.METRICS_TOKEN = "scrape-" + str(time.time())
    assert (await api.get("/metrics")).status_code == 401
    ok = await api.get("/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"})
    assert ok.status_code == 200 and "vep_requests_total" in ok.text


async def test_live_miner_figures_are_the_ones_routing_uses(api, key, network):
    network.set_behaviour(2, mode="error")
    for uids in ([0], [0], [2]):
        await api.post("/chat", json={"messages": HELLO, "uids": uids}, headers=bearer(key))
    await miner_book().flush()
    scrape_now = await scrape(api)
    live = miner_book().read([network.miner(0).hotkey, network.miner(2).hotkey])
    assert value(scrape_now, "vep_miner_success_rate", uid="0") == 1.0
    assert value(scrape_now, "vep_miner_success_rate", uid="2") == 0.0
    assert value(scrape_now, "vep_miner_consecutive_failures", uid="2") == 1
    assert value(scrape_now, "vep_miner_latency_ms", uid="0") == pytest.approx(live[network.miner(0).hotkey].latency_ms)
    assert value(scrape_now, "vep_miner_cooling_down", uid="2") == 0
