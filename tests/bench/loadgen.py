"""The load generator of the benchmarks, in its own process so that its CPU is
not counted as the server's and its event loop does not share a GIL with the
test runner's. An aiohttp client on uvloop: about 0.2 ms of CPU a request,
less than the cheapest server measured here.

Protocol (see ``tests.bench.harness.Load``): one JSON spec line on stdin; it
warms up, prints ``{"ready": true}``, waits for a ``go`` line, sends ``n``
requests ``concurrency`` at a time and prints one JSON line of results:
latencies (ms, whole answer), time to first token for streams, statuses.

Spec: url, headers, body (text), n, concurrency, warmup, stream (bool),
sign (null, or {"receiver": ss58, "path": ...}: btauth/1 headers made for
each request, before its clock starts, as a validator would).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time

import aiohttp
import uvloop

CONTENT = re.compile(rb'"content":\s*"[^"]')


def signer(spec: dict):
    if not spec.get("sign"):
        return None
    from bittensor import http_auth
    from bittensor.sp_core import Keypair

    keypair = Keypair.create_from_uri("//bench/validator")
    receiver, path = spec["sign"]["receiver"], spec["sign"]["path"]

    def sign(body: bytes) -> dict:
        return http_auth.sign(keypair, method="POST", path=path, body=body, receiver_ss58=receiver)

    return sign


async def one(session: aiohttp.ClientSession, spec: dict, body: bytes, sign, out: dict) -> None:
    headers = dict(spec.get("headers") or {})
    headers["Content-Type"] = "application/json"
    if sign is not None:
        headers.update(sign(body))
    started = time.perf_counter()
    first = None
    try:
        async with session.post(spec["url"], data=body, headers=headers) as response:
            if spec.get("stream") and response.status == 200:
                async for line in response.content:
                    if first is None and CONTENT.search(line):
                        first = time.perf_counter()
            else:
                await response.read()
            status = response.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        out["errors"] += 1
        out["first_error"] = out["first_error"] or f"{type(exc).__name__}: {exc}"
        return
    done = time.perf_counter()
    out["statuses"][str(status)] = out["statuses"].get(str(status), 0) + 1
    if status != 200:
        out["first_error"] = out["first_error"] or f"HTTP {status}"
        return
    out["latency_ms"].append((done - started) * 1000)
    if spec.get("stream"):
        if first is None:
            out["first_error"] = out["first_error"] or "a stream without content"
        else:
            out["ttft_ms"].append((first - started) * 1000)


async def run(spec: dict, n: int, concurrency: int, session: aiohttp.ClientSession, sign) -> dict:
    out = {"latency_ms": [], "ttft_ms": [], "statuses": {}, "errors": 0, "first_error": None}
    body = spec["body"].encode()
    left = [n]

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await one(session, spec, body, sign, out)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    out["elapsed_s"] = time.perf_counter() - started
    return out


async def main() -> None:
    spec = json.loads(sys.stdin.readline())
    sign = signer(spec)
    timeout = aiohttp.ClientTimeout(total=spec.get("timeout", 120))
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        warm = await run(
            spec, spec.get("warmup", 50), min(spec["concurrency"], spec.get("warmup", 50) or 1), session, sign
        )
        print(json.dumps({"ready": True, "warmup_errors": warm["first_error"]}), flush=True)
        sys.stdin.readline()  # "go"
        result = await run(spec, spec["n"], spec["concurrency"], session, sign)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    uvloop.run(main())
