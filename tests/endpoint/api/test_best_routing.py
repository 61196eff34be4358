"""The best:N strategy against real localnet miners with set failure rates
and latencies: it learns who answers, retries, hedges, and forgives."""

from __future__ import annotations

import asyncio
import time

import pytest

from endpoint.core.db import run_db
from endpoint.network.minerstats import miner_book
from keys.models import ApiKey
from logs.models import MinerResponse, Request

from .conftest import HELLO, bearer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_exploration_unless_asked(settings):
    """Exploration sends a random newcomer a prompt now and then: tests that
    expect a given miner turn it off; the learning test turns it back on."""
    settings.ROUTING_EXPLORATION = 0.0


def by_incentive(subnet) -> list[int]:
    neurons = subnet.snapshot()["neurons"]
    return [n["uid"] for n in sorted(neurons, key=lambda n: (-n["incentive"], n["uid"]))]


async def ask(api, key, strategy: str, n: int, *, concurrency: int = 4) -> list[dict]:
    """``n`` /chat calls, ``concurrency`` at a time; the bodies, status added."""
    bodies: list[dict] = []
    for start in range(0, n, concurrency):
        batch = [
            api.post("/chat", json={"messages": HELLO, "strategy": strategy}, headers=bearer(key))
            for _ in range(min(concurrency, n - start))
        ]
        for r in await asyncio.gather(*batch):
            bodies.append({"status": r.status_code, **r.json()})
    await miner_book().flush()
    return bodies


async def test_best_learns_to_avoid_the_flaky_high_incentive_miners(api, key, network, settings):
    settings.MINER_STATS_REFRESH_SECONDS = 0.0
    settings.ROUTING_EXPLORATION = 0.05
    flaky = by_incentive(network)[:2]
    network.set_behaviour(flaky[0], failure_rate=0.5)
    network.set_behaviour(flaky[1], failure_rate=0.3)
    warm_up = await ask(api, key, "best:1", 200)
    assert sum(b["status"] == 200 for b in warm_up) >= 195  # retries hide the flaky ones from the client

    for miner in network.miners:
        miner.forget()
    best = await ask(api, key, "best:1", 200)
    flaky_asked = sum(len(network.miner(uid).seen) for uid in flaky)
    assert flaky_asked <= 20, f"best:1 still sent {flaky_asked} of 200 prompts to the flaky miners"
    assert all(b["status"] == 200 for b in best)
    assert sum(b["choices"][0]["uid"] not in flaky for b in best) >= 180

    for miner in network.miners:
        miner.forget()
    top = await ask(api, key, "top_n:1", 100)
    assert len(network.miner(flaky[0]).seen) == 100  # top_n keeps asking the highest incentive
    assert sum(b["status"] != 200 for b in top) >= 25


async def test_a_failing_miner_is_retried_on_the_next_best_and_charged_once(api, key, network):
    first = by_incentive(network)[0]  # with no history, incentive breaks the tie
    network.set_behaviour(first, mode="error")
    r = await api.post("/chat", json={"messages": HELLO, "strategy": "best:1"}, headers=bearer(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [f["uid"] for f in body["failed_responses"]] == [first]
    assert body["choices"][0]["uid"] != first
    entry = await run_db(lambda: Request.objects.latest("started_at"))
    assert entry.strategy == "best:1" and entry.credits_charged == 1
    rows = await run_db(lambda: list(MinerResponse.objects.filter(request=entry).values_list("uid", "is_success")))
    assert sorted(rows) == sorted([(first, False), (body["choices"][0]["uid"], True)])
    assert (await run_db(lambda: ApiKey.objects.get(pk=key.key.pk).credits)) == 999


async def test_no_retry_beyond_the_limit(api, key, network, settings):
    settings.ROUTING_MAX_RETRIES = 1
    ranked = by_incentive(network)
    network.set_behaviour(ranked[:3], mode="error")
    r = await api.post("/chat", json={"messages": HELLO, "strategy": "best:1"}, headers=bearer(key))
    assert r.status_code == 502
    assert len(r.json()["failed_responses"]) == 2  # the pick and one retry, not a third miner
    assert not network.miner(ranked[2]).seen


async def test_a_slow_answer_is_hedged_and_the_loser_cancelled(api, key, network, settings):
    settings.MINER_STATS_REFRESH_SECONDS = 0.0
    first = by_incentive(network)[0]
    network.set_behaviour(range(8), latency=0.02)
    await ask(api, key, f"uids:{first}", 12, concurrency=1)  # enough answers to know its p95
    network.set_behaviour(first, stall_rate=1.0, stall=5.0)
    started = time.perf_counter()
    r = await api.post("/chat", json={"messages": HELLO, "strategy": "best:1"}, headers=bearer(key))
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text
    answered = r.json()["choices"][0]["uid"]
    assert answered != first and elapsed < 1.0
    entry = await run_db(lambda: Request.objects.latest("started_at"))
    assert entry.credits_charged == 1
    rows = await run_db(lambda: {m.uid: m.error for m in MinerResponse.objects.filter(request=entry)})
    assert set(rows) == {first, answered} and "cancelled" in rows[first]


async def test_a_miner_in_cool_down_is_skipped_then_used_again(api, key, network, settings):
    settings.MINER_STATS_REFRESH_SECONDS = 0.0
    settings.ROUTING_COOLDOWN_SECONDS = 1.0
    first = by_incentive(network)[0]
    network.set_behaviour(first, mode="error")
    await ask(api, key, f"uids:{first}", 3, concurrency=1)  # three failures in a row: a cool-down
    assert len(network.miner(first).seen) == 3
    network.set_behaviour(first, mode="ok")
    await ask(api, key, "best:1", 5, concurrency=1)
    assert len(network.miner(first).seen) == 3  # cooling down: not asked
    await asyncio.sleep(1.1)
    bodies = await ask(api, key, "best:1", 1, concurrency=1)
    assert len(network.miner(first).seen) == 4  # the cool-down is over: tried again
    assert bodies[0]["choices"][0]["uid"] == first


async def test_streams_are_retried_before_the_first_chunk(api, key, network):
    first = by_incentive(network)[0]
    network.set_behaviour(first, mode="error")
    body = {"model": "best", "messages": HELLO, "stream": True}
    async with api.stream("POST", "/v1/chat/completions", json=body, headers=bearer(key)) as r:
        text = (await r.aread()).decode()
    assert r.status_code == 200
    assert text.rstrip().endswith("data: [DONE]")
    assert len(network.miner(first).seen) == 1
    entry = await run_db(lambda: Request.objects.latest("started_at"))
    assert entry.credits_charged == 1


async def test_the_figures_are_kept_per_miner(api, key, network):
    flaky = by_incentive(network)[0]
    network.set_behaviour(flaky, mode="error")
    await ask(api, key, f"uids:{flaky}", 2, concurrency=1)
    await ask(api, key, "uids:" + str(by_incentive(network)[1]), 3, concurrency=1)
    stats = miner_book().read([network.miner(flaky).hotkey, network.miner(by_incentive(network)[1]).hotkey])
    bad, good = stats[network.miner(flaky).hotkey], stats[network.miner(by_incentive(network)[1]).hotkey]
    assert bad.calls == 2 and bad.success == 0.0 and bad.consecutive_failures == 2 and "500" in bad.last_error
    assert good.calls == 3 and good.success == 1.0 and len(good.recent_ms) == 3 and good.inflight == 0
