"""A local subnet: N miners on loopback, each with its own hotkey, verifying
btauth/1 and answering OpenAI chat completions (JSON or SSE) with text that
names their uid. Fault modes make a miner hang, reset, fail, babble, flood or
drip, so tests and `make run` exercise the real network path offline.

    with LocalSubnet(8) as subnet:
        sync_metagraph(snapshot=subnet.snapshot())
        subnet.set_behaviour(0, mode="hang")
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiohttp import web
from bittensor import http_auth
from bittensor.sp_core import Keypair

log = logging.getLogger(__name__)
logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

MODES = ("ok", "error", "hang", "reset", "garbage", "huge", "drip", "empty")
HUGE_BYTES = 20 * 1024 * 1024


@dataclass
class MinerBehaviour:
    latency: float = 0.0  # seconds before the first byte
    jitter: float = 0.0  # ± uniform seconds on top of latency
    failure_rate: float = 0.0  # chance of an HTTP 500
    mode: str = "ok"
    upstream: str | None = None  # OpenAI-compatible base URL to forward to

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown miner mode {self.mode!r}; known: {', '.join(MODES)}")

    def delay(self) -> float:
        return max(0.0, self.latency + (random.uniform(-self.jitter, self.jitter) if self.jitter else 0.0))


@dataclass
class SeenRequest:
    caller_hotkey: str | None
    auth_error: str | None
    body: dict | None
    at: float = field(default_factory=time.time)


class Miner:
    def __init__(self, uid: int, behaviour: MinerBehaviour, host: str) -> None:
        self.uid = uid
        self.keypair = Keypair.create_from_uri(f"//localnet/miner/{uid}")
        self.hotkey = self.keypair.ss58_address
        self.coldkey = Keypair.create_from_uri(f"//localnet/coldkey/{uid}").ss58_address
        self.host = host
        self.port = 0
        self.behaviour = behaviour
        self.nonce_store = http_auth.InMemoryNonceStore()
        self._seen: list[SeenRequest] = []
        self._lock = threading.Lock()

    @property
    def axon(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def record(self, entry: SeenRequest) -> None:
        with self._lock:
            self._seen.append(entry)

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()
        self.nonce_store = http_auth.InMemoryNonceStore()

    def answer_text(self, body: dict) -> str:
        last_user = next((m.get("content") for m in reversed(body["messages"]) if m.get("role") == "user"), "")
        return f"Miner {self.uid} heard: {last_user}"


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind}}, status=status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _completion(miner: Miner, body: dict, text: str) -> dict:
    words = len(text.split())
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
    n = body.get("n") if isinstance(body.get("n"), int) and body.get("n", 1) > 0 else 1
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "localnet",
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"} for i in range(n)
        ],
        "usage": {"prompt_tokens": prompt_words, "completion_tokens": words, "total_tokens": prompt_words + words},
    }


def _chunk(completion_id: str, created: int, model: str, delta: dict, finish: str | None = None) -> bytes:
    chunk = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def _stream(request: web.Request, body: dict, text: str) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    completion_id, created, model = (
        f"chatcmpl-{uuid.uuid4().hex[:24]}",
        int(time.time()),
        body.get("model") or "localnet",
    )
    await response.write(_chunk(completion_id, created, model, {"role": "assistant"}))
    words = text.split(" ")
    for i, word in enumerate(words):
        piece = word + (" " if i < len(words) - 1 else "")
        await response.write(_chunk(completion_id, created, model, {"content": piece}))
    await response.write(_chunk(completion_id, created, model, {}, finish="stop"))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _flood(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    block = b"x" * 65536
    try:
        for _ in range(HUGE_BYTES // len(block)):
            await response.write(block)
        await response.write_eof()
    except (ConnectionResetError, RuntimeError):
        pass  # the client stopped reading, as it should
    return response


async def _drip(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        while True:
            await response.write(b" ")
            await asyncio.sleep(1.0)
    except (ConnectionResetError, RuntimeError):
        pass
    return response


async def _forward(request: web.Request, upstream: str, raw: bytes, body: dict) -> web.StreamResponse:
    url = upstream.rstrip("/") + "/chat/completions"
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
        async with client.stream("POST", url, content=raw, headers={"Content-Type": "application/json"}) as up:
            response = web.StreamResponse(
                status=up.status_code, headers={"Content-Type": up.headers.get("content-type", "application/json")}
            )
            await response.prepare(request)
            async for piece in up.aiter_raw():
                await response.write(piece)
            await response.write_eof()
            return response


class LocalSubnet:
    def __init__(
        self,
        n_miners: int = 8,
        *,
        host: str = "127.0.0.1",
        base_port: int = 0,
        behaviour: MinerBehaviour | None = None,
        path: str = "/v1/chat/completions",
        netuid: int = 1,
        incentives: list[float] | None = None,
    ) -> None:
        if incentives is not None and len(incentives) != n_miners:
            raise ValueError("give one incentive per miner")
        self.host = host
        self.base_port = base_port
        self.path = path
        self.netuid = netuid
        self.default_behaviour = behaviour or MinerBehaviour()
        self.miners = [Miner(uid, replace(self.default_behaviour), host) for uid in range(n_miners)]
        self.incentives = incentives or self._default_incentives(n_miners, netuid)
        self._runners: list[web.ServerRunner] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def _default_incentives(n: int, netuid: int) -> list[float]:
        # Distinct and deliberately not in uid order, so top_n has to sort.
        order = random.Random(netuid * 7919 + n).sample(range(n), n)
        return [round((rank + 1) / n, 6) for rank in order]

    # --- serving -------------------------------------------------------------

    def _handler(self, miner: Miner):
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            if request.path != self.path:
                return _error(404, f"no route {request.path}", "not_found")
            if request.method != "POST":
                return _error(405, "use POST", "invalid_request_error")
            raw = await request.read()
            try:
                caller = http_auth.verify(
                    request.headers,
                    raw,
                    method="POST",
                    path=request.path_qs,
                    self_hotkey_ss58=miner.hotkey,
                    nonce_store=miner.nonce_store,
                )
            except http_auth.AuthError as exc:
                miner.record(SeenRequest(None, type(exc).__name__, None))
                return _error(401, str(exc), "authentication_error")
            try:
                body = orjson.loads(raw)
                if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                    raise ValueError
            except ValueError:
                miner.record(SeenRequest(caller.hotkey_ss58, None, None))
                return _error(400, "body must be a JSON object with a messages list", "invalid_request_error")
            miner.record(SeenRequest(caller.hotkey_ss58, None, body))
            return await self._behave(miner, request, raw, body)

        return handle

    async def _behave(self, miner: Miner, request: web.BaseRequest, raw: bytes, body: dict) -> web.StreamResponse:
        behaviour = miner.behaviour
        delay = behaviour.delay()
        if delay:
            await asyncio.sleep(delay)
        mode = behaviour.mode
        if mode == "error" or (behaviour.failure_rate and random.random() < behaviour.failure_rate):
            return _error(500, f"miner {miner.uid} failed", "server_error")
        if mode == "hang":
            await asyncio.Event().wait()
        if mode == "reset":
            request.transport.abort()
            raise ConnectionResetError("reset on purpose")
        if mode == "garbage":
            return web.Response(text="<html>this is not JSON", content_type="text/html")
        if mode == "huge":
            return await _flood(request)
        if mode == "drip":
            return await _drip(request)
        if behaviour.upstream:
            return await _forward(request, behaviour.upstream, raw, body)
        text = "" if mode == "empty" else miner.answer_text(body)
        if body.get("stream"):
            return await _stream(request, body, text)
        return web.Response(body=orjson.dumps(_completion(miner, body, text)), content_type="application/json")

    async def start_servers(self) -> None:
        for i, miner in enumerate(self.miners):
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.base_port + i if self.base_port else 0))
            miner.port = sock.getsockname()[1]
            runner = web.ServerRunner(web.Server(self._handler(miner)), handle_signals=False, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock, backlog=1024).start()
            self._runners.append(runner)

    async def stop_servers(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    def start(self) -> LocalSubnet:
        """Serve every miner from one background thread; returns once all listen."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                import uvloop

                loop = uvloop.new_event_loop()
            except ImportError:
                loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_servers())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_servers())
            loop.close()

        self._thread = threading.Thread(target=run, name="localnet", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop = self._thread = None

    def __enter__(self) -> LocalSubnet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control -------------------------------------------------------------

    def set_behaviour(self, uids: int | Iterable[int], **changes: Any) -> None:
        """Change how the given miners behave from their next request on."""
        for uid in [uids] if isinstance(uids, int) else uids:
            miner = self.miners[uid]
            miner.behaviour = replace(miner.behaviour, **changes)

    def reset(self) -> None:
        """Every miner back to the subnet's default behaviour, history cleared."""
        for miner in self.miners:
            miner.behaviour = replace(self.default_behaviour)
            miner.forget()

    def snapshot(self) -> dict[str, Any]:
        """The metagraph snapshot (DESIGN §6) the endpoint loads."""
        return {
            "network": "local",
            "netuid": self.netuid,
            "block": int(time.time() // 12),
            "neurons": [
                {
                    "uid": m.uid,
                    "hotkey": m.hotkey,
                    "coldkey": m.coldkey,
                    "axon": m.axon,
                    "incentive": self.incentives[m.uid],
                    "trust": 1.0,
                    "stake": 1000.0,
                    "validator_permit": False,
                    "active": True,
                }
                for m in self.miners
            ],
        }

    def write_snapshot(self, path: str | Path) -> Path:
        target = Path(path).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(self.snapshot(), indent=2))
        partial.replace(target)  # atomic: a reader never sees half a file
        return target
