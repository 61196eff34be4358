"""100 concurrent /chat requests to miners that each take 1 s, one server
process: the whole batch must finish in under 3 s."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from bittensor.sp_core import Keypair

from endpoint.core.config import do_set_config
from endpoint.network.metagraph import sync_metagraph
from keys.services import do_create_key

from .conftest import report, start_localnet

HELLO = [{"role": "user", "content": "What is 1+1?"}]


async def fire(base: str, raw_key: str, n: int, n_miners: int) -> tuple[float, list[int]]:
    headers = {"Authorization": f"Bearer {raw_key}"}
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> int:
            body = {"messages": HELLO, "uids": [i % n_miners]}
            async with session.post("/chat", json=body, headers=headers) as response:
                await response.read()
                return response.status

        started = time.perf_counter()
        statuses = await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - started, list(statuses)


def test_100_concurrent_requests_to_1s_miners(server, tmp_path):
    miners, snapshot = start_localnet(8, tmp_path, latency=1.0)
    try:
        do_set_config("network", "local")
        do_set_config("hotkey_mnemonic", Keypair.generate_mnemonic(12))
        sync_metagraph(snapshot=snapshot)
        key = do_create_key(name="bench", credits=None)
        asyncio.run(fire(server, key.raw, 8, 8))  # warm-up: connections, caches
        elapsed, statuses = asyncio.run(fire(server, key.raw, 100, 8))
    finally:
        miners.terminate()
        miners.wait(timeout=10)
    report("chat_100_concurrent_1s_miners", seconds=round(elapsed, 3), ok=statuses.count(200), target_seconds=3.0)
    assert statuses.count(200) == 100
    assert elapsed < 3.0
