"""Time to first token: straight to a localnet miner (signed) vs through
/v1/chat/completions with stream=true, at concurrency 1 and 16
(target: within 3 ms p50 at concurrency 1)."""

from __future__ import annotations

import asyncio
import statistics
import time

import aiohttp
import orjson
from bittensor import http_auth
from bittensor.sp_core import Keypair

from endpoint.core.config import do_set_config
from endpoint.network.metagraph import sync_metagraph
from keys.services import do_create_key

from .conftest import report, start_localnet

REQUESTS = 300
PATH = "/v1/chat/completions"


async def first_token_ms(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict) -> float:
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        async for line in response.content:
            if b'"content"' in line:
                elapsed = (time.perf_counter() - started) * 1000
                break
        else:
            raise AssertionError("no content in the stream")
        async for _ in response.content:
            pass
    return elapsed


async def measure(make_request, concurrency: int) -> list[float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for _ in range(20):  # warm-up
            await make_request(session)
        samples: list[float] = []

        async def worker(n: int) -> None:
            for _ in range(n):
                samples.append(await make_request(session))

        await asyncio.gather(*(worker(REQUESTS // concurrency) for _ in range(concurrency)))
        return samples


def pct(samples: list[float], q: float) -> float:
    return round(statistics.quantiles(samples, n=100)[q - 1], 2)


def test_time_to_first_token_through_the_endpoint(server, tmp_path):
    miners, snapshot = start_localnet(1, tmp_path)
    try:
        do_set_config("network", "local")
        do_set_config("hotkey_mnemonic", Keypair.generate_mnemonic(12))
        sync_metagraph(snapshot=snapshot)
        key = do_create_key(name="bench", credits=None)
        miner = snapshot["neurons"][0]
        signer = Keypair.create_from_uri("//bench/validator")
        chat = {"messages": [{"role": "user", "content": "one two three four five"}], "stream": True}

        async def direct(session):
            body = orjson.dumps(chat)
            headers = http_auth.sign(signer, method="POST", path=PATH, body=body, receiver_ss58=miner["hotkey"])
            headers["Content-Type"] = "application/json"
            return await first_token_ms(session, f"http://{miner['axon']}{PATH}", body, headers)

        async def endpoint(session):
            body = orjson.dumps({**chat, "model": "uid:0"})
            headers = {"Authorization": f"Bearer {key.raw}", "Content-Type": "application/json"}
            return await first_token_ms(session, server + PATH, body, headers)

        for concurrency in (1, 16):
            own = asyncio.run(measure(direct, concurrency))
            through = asyncio.run(measure(endpoint, concurrency))
            report(
                "stream_ttft_ms",
                concurrency=concurrency,
                miner_p50=pct(own, 50),
                endpoint_p50=pct(through, 50),
                added_p50=round(pct(through, 50) - pct(own, 50), 2),
                miner_p99=pct(own, 99),
                endpoint_p99=pct(through, 99),
                target_added_p50_at_c1=3.0,
            )
            if concurrency == 1:
                added_c1 = pct(through, 50) - pct(own, 50)
    finally:
        miners.terminate()
        miners.wait(timeout=10)
    assert added_c1 <= 3.0
