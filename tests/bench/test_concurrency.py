"""100 concurrent /chat requests to miners that each take 1 s, one server
process: the whole batch must finish in under 3 s (issue: The network)."""

from __future__ import annotations

import asyncio
import time

import httpx
from bittensor.sp_core import Keypair

from endpoint.config import do_set_config
from endpoint.network.localnet import LocalSubnet, MinerBehaviour
from endpoint.network.metagraph import sync_metagraph
from keys.services import do_create_key

from .conftest import report

HELLO = [{"role": "user", "content": "What is 1+1?"}]


async def fire(base: str, raw_key: str, n: int, n_miners: int) -> tuple[float, list[int]]:
    headers = {"Authorization": f"Bearer {raw_key}"}
    limits = httpx.Limits(max_connections=n + 10)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(client.post("/chat", json={"messages": HELLO, "uids": [i % n_miners]}, headers=headers) for i in range(n))
        )
        return time.perf_counter() - started, [r.status_code for r in responses]


def test_100_concurrent_requests_to_1s_miners(server):
    with LocalSubnet(8, behaviour=MinerBehaviour(latency=1.0)) as subnet:
        do_set_config("network", "local")
        do_set_config("hotkey_mnemonic", Keypair.generate_mnemonic(12))
        sync_metagraph(snapshot=subnet.snapshot())
        key = do_create_key(name="bench", credits=None)
        asyncio.run(fire(server, key.raw, 8, 8))  # warm-up: connections, caches
        elapsed, statuses = asyncio.run(fire(server, key.raw, 100, 8))
    report("chat_100_concurrent_1s_miners", seconds=round(elapsed, 3), ok=statuses.count(200), target_seconds=3.0)
    assert statuses.count(200) == 100
    assert elapsed < 3.0
