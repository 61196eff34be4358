"""best:N against top_n on a subnet with flaky and stalling miners, through a
real server process with its statistics in Redis: routing that learns
from its miners. Figures are written up in tests/bench/RESULTS.md."""

from __future__ import annotations

import asyncio
import statistics
import time

import aiohttp
import pytest
from bittensor.sp_core import Keypair
from django.conf import settings

from endpoint.core.config import do_set_config
from endpoint.network.localnet import LocalSubnet, MinerBehaviour
from endpoint.network.metagraph import sync_metagraph
from endpoint.network.minerstats import miner_book
from keys.services import do_create_key
from tests.servers import database_env, start_server, stop

from .conftest import report

HELLO = [{"role": "user", "content": "What is 1+1?"}]


async def run(base: str, raw: str, strategy: str, n: int, concurrency: int = 4) -> list[tuple[int, float, int | None]]:
    """(status, seconds, answering uid) of ``n`` /chat calls."""
    headers = {"Authorization": f"Bearer {raw}"}
    out: list[tuple[int, float, int | None]] = []
    async with aiohttp.ClientSession(base) as session:

        async def one() -> None:
            started = time.perf_counter()
            async with session.post("/chat", json={"messages": HELLO, "strategy": strategy}, headers=headers) as r:
                body = await r.json()
            uid = body["choices"][0]["uid"] if r.status == 200 else None
            out.append((r.status, time.perf_counter() - started, uid))

        for start in range(0, n, concurrency):
            await asyncio.gather(*(one() for _ in range(min(concurrency, n - start))))
    return out


def p99(results) -> float:
    return statistics.quantiles([seconds for _, seconds, _ in results], n=100)[98] * 1000


@pytest.fixture
def miners(transactional_db):
    if not settings.REDIS_URL:
        pytest.fail("the routing bench needs Redis (REDIS_URL), as production does")
    with LocalSubnet(8, behaviour=MinerBehaviour(latency=0.05, jitter=0.01)) as running:
        do_set_config("network", "local")
        do_set_config("hotkey_mnemonic", Keypair.generate_mnemonic(12))
        sync_metagraph(snapshot=running.snapshot())
        miner_book().clear()
        yield running


def ranked(subnet) -> list[int]:
    neurons = subnet.snapshot()["neurons"]
    return [n["uid"] for n in sorted(neurons, key=lambda n: (-n["incentive"], n["uid"]))]


def test_best_learns_the_reliable_miners(server, miners):
    subnet = miners
    key = do_create_key(name="bench", credits=None)
    flaky = ranked(subnet)[:2]
    subnet.set_behaviour(flaky[0], failure_rate=0.5)
    subnet.set_behaviour(flaky[1], failure_rate=0.3)
    warm = asyncio.run(run(server, key.raw, "best:1", 200))
    for miner in subnet.miners:
        miner.forget()
    best = asyncio.run(run(server, key.raw, "best:1", 200))
    to_flaky = sum(len(subnet.miner(uid).seen) for uid in flaky)
    for miner in subnet.miners:
        miner.forget()
    top = asyncio.run(run(server, key.raw, "top_n:1", 200))
    report(
        "routing_best_vs_top_n",
        warm_up_ok=sum(s == 200 for s, _, _ in warm) / 200,
        best_ok=sum(s == 200 for s, _, _ in best) / 200,
        best_prompts_to_reliable=round(1 - to_flaky / 200, 3),
        top_n_prompts_to_flaky=len(subnet.miner(flaky[0]).seen) / 200,
        top_n_ok=sum(s == 200 for s, _, _ in top) / 200,
    )
    assert to_flaky <= 20  # ≥ 90 % of prompts to ≥ 95 %-success miners
    assert len(subnet.miner(flaky[0]).seen) == 200


def test_hedging_keeps_the_tail_short(server, miners):
    subnet = miners
    key = do_create_key(name="bench", credits=None)
    order = ranked(subnet)
    fast = asyncio.run(run(server, key.raw, f"uids:{order[1]}", 300))
    subnet.set_behaviour(order[0], stall_rate=0.2, stall=1.0)
    figures = {"fast_miner_p99_ms": round(p99(fast), 1)}
    figures["top_n_1_p99_ms"] = round(p99(asyncio.run(run(server, key.raw, "top_n:1", 300))), 1)

    miner_book().clear()  # best starts knowing nothing (top_n's calls were recorded too)
    time.sleep(1)  # the server's snapshot of the figures expires
    learning = asyncio.run(run(server, key.raw, "best:1", 100))  # while it learns who stalls
    hedged = asyncio.run(run(server, key.raw, "best:1", 300))
    figures["best_1_learning_p99_ms"] = round(p99(learning), 1)
    figures["best_1_p99_ms"] = round(p99(hedged), 1)
    figures["best_1_to_staller"] = sum(uid == order[0] for _, _, uid in hedged) / 300

    miner_book().clear()
    proc, base = start_server({**database_env(), "ROUTING_HEDGE": "false"})
    try:
        learning = asyncio.run(run(base, key.raw, "best:1", 100))
        unhedged = asyncio.run(run(base, key.raw, "best:1", 300))
    finally:
        stop(proc)
    figures["best_1_no_hedging_learning_p99_ms"] = round(p99(learning), 1)
    figures["best_1_no_hedging_p99_ms"] = round(p99(unhedged), 1)
    figures["best_1_no_hedging_to_staller"] = sum(uid == order[0] for _, _, uid in unhedged) / 300
    report("routing_hedging_20pct_stalls", **figures, target_ratio=1.5)
    assert figures["best_1_p99_ms"] < 1.5 * figures["fast_miner_p99_ms"]
