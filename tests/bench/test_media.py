"""Media through the gateway, one server process: the memory a worker needs
for 32 concurrent image requests (each answer is a 1024x1024 PNG in base64
JSON, held whole: the route can't stream it), and how much later the first
audio byte of speech reaches the client than it leaves the miner."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import aiohttp
from bittensor.sp_core import Keypair

from endpoint.core.config import do_set_config
from endpoint.core.subnets import do_add_subnet
from endpoint.network.btauth import sign_request
from endpoint.network.metagraph import sync_subnet
from keys.services import do_create_key

from . import harness
from .conftest import report, start_localnet

IMAGE_CONCURRENCY = 32
SPEECH_CALLS = 60


def register(slug: str, kind: str, netuid: int, snapshot: dict) -> None:
    row = do_add_subnet(slug, {"name": slug, "kind": kind, "netuid": str(netuid), "network": "local"})
    sync_subnet(row, snapshot=snapshot)


class PeakRss:
    """The largest resident memory of the server's workers while it runs."""

    def __init__(self, server_pid: int) -> None:
        self.pids = harness.workers(server_pid) or [server_pid]
        self.idle = max(harness.rss_mb(pid) for pid in self.pids)
        self.peak = self.idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, *(harness.rss_mb(pid) for pid in self.pids))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def images(base: str, raw_key: str, n: int) -> tuple[float, list[int], int]:
    headers = {"Authorization": f"Bearer {raw_key}"}
    body = {"model": "images/auto", "prompt": "a lighthouse", "size": "1024x1024", "response_format": "b64_json"}
    async with aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> tuple[int, int]:
            payload = {**body, "model": f"images/uid:{i % 8}"}
            async with session.post("/v1/images/generations", json=payload, headers=headers) as response:
                return response.status, len(await response.read())

        started = time.perf_counter()
        answers = await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - started, [s for s, _ in answers], max(size for _, size in answers)


async def first_byte_ms(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict) -> float:
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        await response.content.readany()
        first = time.perf_counter()
        await response.read()
    return (first - started) * 1000


async def speech(base: str, raw_key: str, miner: dict, n: int) -> tuple[list[float], list[float]]:
    """Time to the first audio byte, through the gateway and straight from the miner (signed), alternating."""
    keypair = Keypair.create_from_uri("//bench/validator")
    text = "the first byte of speech should not wait for the last one " * 4
    through, direct = [], []
    async with aiohttp.ClientSession() as session:
        gateway_body = f'{{"model": "speech/uid:0", "voice": "alloy", "input": "{text}"}}'.encode()
        miner_body = f'{{"voice": "alloy", "input": "{text}", "response_format": "mp3"}}'.encode()
        auth = {"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"}
        for i in range(n + 5):
            signed = sign_request(keypair, path="/v1/audio/speech", body=miner_body, receiver=miner["hotkey"])
            mine = await first_byte_ms(
                session,
                f"http://{miner['axon']}/v1/audio/speech",
                miner_body,
                {**signed, "Content-Type": "application/json"},
            )
            ours = await first_byte_ms(session, base + "/v1/audio/speech", gateway_body, auth)
            if i >= 5:  # warm-up: connections, caches
                direct.append(mine)
                through.append(ours)
    return through, direct


def test_media_memory_and_speech_first_byte(django_db_setup, transactional_db, tmp_path):
    from tests.servers import database_env, start_server, stop

    image_miners, image_snapshot = start_localnet(8, tmp_path, kind="image", netuid=19)
    speech_miners, speech_snapshot = start_localnet(1, tmp_path, kind="speech", netuid=20)
    proc, base = start_server(database_env())
    try:
        do_set_config("network", "local")
        do_set_config("hotkey_mnemonic", Keypair.generate_mnemonic(12))
        register("images", "image", 19, image_snapshot)
        register("speech", "speech", 20, speech_snapshot)
        key = do_create_key(name="bench", credits=None)
        asyncio.run(images(base, key.raw, 8))  # warm-up
        with PeakRss(proc.pid) as rss:
            elapsed, statuses, answer_bytes = asyncio.run(images(base, key.raw, IMAGE_CONCURRENCY))
        through, direct = asyncio.run(speech(base, key.raw, speech_snapshot["neurons"][0], SPEECH_CALLS))
    finally:
        stop(proc)
        for miners in (image_miners, speech_miners):
            miners.terminate()
            miners.wait(timeout=10)
    added = statistics.median(through) - statistics.median(direct)
    report(
        "images_32_concurrent_1024px",
        seconds=round(elapsed, 3),
        ok=statuses.count(200),
        answer_kib=round(answer_bytes / 1024, 1),
        worker_rss_idle_mb=rss.idle,
        worker_rss_peak_mb=rss.peak,
        target_peak_growth_mb=300,
    )
    report(
        "speech_first_byte",
        calls=len(through),
        miner_p50_ms=round(statistics.median(direct), 2),
        gateway_p50_ms=round(statistics.median(through), 2),
        added_p50_ms=round(added, 2),
        target_added_p50_ms=5.0,
    )
    assert statuses.count(200) == IMAGE_CONCURRENCY
    assert rss.peak - rss.idle < 300
    assert added < 5.0
