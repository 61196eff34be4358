"""A local subnet: N miners on loopback, each with its own hotkey, verifying
btauth/1 and answering OpenAI chat completions (JSON or SSE) with text that
names their uid, or with a call to the first tool when the request offers
tools. Fault modes make a miner fail, hang, reset, babble, flood or
drip (or refuse), so tests and `make run` exercise the real network path offline.

    with LocalSubnet(8) as subnet:
        sync_metagraph(snapshot=subnet.snapshot())
        subnet.set_behaviour(0, mode="hang")

A subnet of another ``kind`` answers images, speech, transcriptions or
embeddings instead (`localnet_media` says what, `KIND_PATHS` where). The
fault modes apply to every kind; for them "refuse" is a 400
content_policy_violation from image and speech miners and no fault at all
for transcription and embeddings, "ignore_format" no fault at all, and
``upstream`` is ignored (only chat forwards).

All miners share one event loop: in a background thread (`start()`), or the
caller's loop (`await serve()`, which `manage.py localnet` uses).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiohttp import web
from bittensor import http_auth
from bittensor.sp_core import Keypair

from endpoint.network import localnet_media as media

log = logging.getLogger(__name__)

# A subnet's kind (the values of endpoint.core.models.Subnet.Kind) and the path its miners answer on.
KIND_PATHS = {
    "chat": "/v1/chat/completions",
    "image": "/v1/images/generations",
    "speech": "/v1/audio/speech",
    "transcription": "/v1/audio/transcriptions",
    "embeddings": "/v1/embeddings",
}
MODES = ("ok", "error", "hang", "reset", "garbage", "huge", "drip", "empty", "refuse", "ignore_format")
# How a streamed answer goes wrong after its first content.
STREAM_FAULTS = ("", "reset", "garbage", "long_line", "drip")
HUGE_BYTES = 20 * 1024 * 1024
HUGE_CHUNK = b"x" * (256 * 1024)
DRIP_INTERVAL = 1.0
UPSTREAM_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
# aiohttp waits a minute for in-flight handlers on shutdown; a hung miner
# would hold stop() that long.
SHUTDOWN_GRACE = 0.25
START_TIMEOUT = 30.0
SPEECH_CHUNK = 4096  # speech goes out in pieces this big, so a gateway can relay it as it comes


@dataclass
class MinerBehaviour:
    latency: float = 0.0  # seconds before the first byte
    jitter: float = 0.0  # uniform ± seconds on top of latency
    failure_rate: float = 0.0  # chance of an HTTP 500
    mode: str = "ok"
    upstream: str | None = None  # OpenAI-compatible base URL to forward the chat body to
    upstream_api_key: str | None = field(default=None, repr=False)
    upstream_model: str | None = None  # replaces the body's model when forwarding
    chunk_delay: float = 0.0  # seconds between streamed chunks (mid-stream disconnect tests)
    stall_rate: float = 0.0  # chance that a call waits ``stall`` seconds more (tail-latency tests)
    stall: float = 0.0
    require_auth: bool = True  # False: answer unsigned requests too (for clients without btauth/1, e.g. LiteLLM)
    stream_fault: str = ""  # one of STREAM_FAULTS: what a stream does after its first content
    # Report ``usage`` (word counts) as OpenAI does: in every answer, and in a
    # stream's last chunk when ``stream_options.include_usage`` asks. False:
    # never, as some miners do, so the endpoint has to count.
    report_usage: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown miner mode {self.mode!r}; known: {', '.join(MODES)}")
        if self.stream_fault not in STREAM_FAULTS:
            raise ValueError(f"unknown stream fault {self.stream_fault!r}; known: {', '.join(STREAM_FAULTS)}")
        if self.latency < 0 or self.jitter < 0:
            raise ValueError("latency and jitter must not be negative")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        if not 0.0 <= self.stall_rate <= 1.0 or self.stall < 0:
            raise ValueError("stall_rate must be between 0 and 1 and stall not negative")

    def delay(self) -> float:
        delay = self.latency
        if self.jitter:
            delay = max(0.0, delay + random.uniform(-self.jitter, self.jitter))
        if self.stall_rate and random.random() < self.stall_rate:
            delay += self.stall
        return delay

    def fails_now(self) -> bool:
        return self.mode == "error" or (self.failure_rate > 0 and random.random() < self.failure_rate)


@dataclass(frozen=True)
class SeenRequest:
    caller_hotkey: str | None  # the verified sender
    auth_error: str | None  # the AuthError class name when verification failed
    body: dict[str, Any] | None
    at: float = field(default_factory=time.time)


class Miner:
    """One miner's identity, behaviour and request history."""

    def __init__(self, uid: int, behaviour: MinerBehaviour, host: str) -> None:
        self.uid = uid
        self.keypair = Keypair.create_from_uri(f"//localnet/miner/{uid}")
        self.hotkey: str = self.keypair.ss58_address
        self.coldkey: str = Keypair.create_from_uri(f"//localnet/coldkey/{uid}").ss58_address
        self.host = host
        self.port = 0
        self.behaviour = behaviour
        self.nonce_store = http_auth.InMemoryNonceStore()
        self._seen: list[SeenRequest] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Miner {self.uid} {self.axon} {self.hotkey}>"

    @property
    def axon(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def seen(self) -> list[SeenRequest]:
        """A copy of the requests received so far, safe to read from any thread."""
        with self._lock:
            return list(self._seen)

    def record(self, entry: SeenRequest) -> None:
        with self._lock:
            self._seen.append(entry)

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()

    def answer_text(self, messages: list[Any]) -> str:
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        if last.get("role") == "tool":
            return f"Miner {self.uid} read the tool result: {_text_of(last.get('content'))}"
        return f"Miner {self.uid} heard: {_last_user_text(messages)}"

    def answer(self, body: dict[str, Any], mode: str) -> dict[str, Any]:
        """The assistant message: a call to a tool when the request offers one
        (and the last message is not that tool's result), else text."""
        if mode == "empty":
            return {"content": ""}
        if mode == "refuse":
            return {"content": None, "refusal": f"Miner {self.uid} will not help with that."}
        call = _tool_call(body)
        if call is not None:
            return {"content": None, "tool_calls": [call]}
        text = self.answer_text(body["messages"])
        if mode == "ignore_format":  # prose, whatever format was asked for
            return {"content": text}
        return {"content": _formatted(text, body.get("response_format"))}


# Audio uploads to transcription miners are bigger than aiohttp's 1 MiB default.
MAX_BODY_BYTES = 64 * 1024 * 1024


def _large_bodies(miner: Miner) -> Callable[..., web.BaseRequest]:
    def make(message, payload, protocol, writer, task) -> web.BaseRequest:
        return web.BaseRequest(
            message, payload, protocol, writer, task, asyncio.get_running_loop(), client_max_size=MAX_BODY_BYTES
        )

    return make


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed: the miners stand in for the network in benchmarks."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def default_incentives(n: int) -> list[float]:
    """Distinct incentives summing to 1, deliberately neither ascending nor
    descending by uid, so a top_n strategy has to sort to be right."""
    ranks = random.Random(n).sample(range(1, n + 1), n)
    if n >= 3 and (ranks == sorted(ranks) or ranks == sorted(ranks, reverse=True)):
        ranks = ranks[1:] + ranks[:1]
    total = sum(ranks)
    return [round(rank / total, 6) for rank in ranks]


# --- answers ------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """A call to the tool the request names in ``tool_choice``, else its first
    one, with a placeholder for every required parameter; None when the
    request offers no tools, forbids them, or ends with a tool's result."""
    offered = body.get("tools")
    tools = (
        [t["function"] for t in offered if isinstance(t, dict) and isinstance(t.get("function"), dict)]
        if isinstance(offered, list)
        else []
    )
    choice = body.get("tool_choice")
    last = body["messages"][-1] if body["messages"] else None
    if not tools or choice == "none" or (isinstance(last, dict) and last.get("role") == "tool"):
        return None
    named = choice.get("function") if isinstance(choice, dict) else None
    name = named.get("name") if isinstance(named, dict) else None
    function = next((f for f in tools if f.get("name") == name), tools[0])
    schema = function.get("parameters") if isinstance(function.get("parameters"), dict) else {}
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    arguments = {p: _placeholder(properties.get(p)) for p in required if isinstance(p, str)}
    return {
        "id": "call_" + secrets.token_hex(8),
        "type": "function",
        "function": {"name": str(function.get("name", "")), "arguments": orjson.dumps(arguments).decode()},
    }


def _formatted(text: str, response_format: Any) -> str:
    """``text`` in the format the request asks for: as is, in a JSON object,
    or as an instance of the request's JSON schema (every string ``text``)."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return orjson.dumps({"answer": text}).decode()
    spec = response_format.get("json_schema") if kind == "json_schema" else None
    if isinstance(spec, dict):
        return orjson.dumps(_instance(spec.get("schema"), text)).decode()
    return text


def _instance(schema: Any, text: str, depth: int = 0) -> Any:
    """A value valid against the simple schemas tests use (objects, arrays, enums, scalars)."""
    if not isinstance(schema, dict) or depth > 16:
        return text
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combined in ("anyOf", "oneOf"):
        if isinstance(schema.get(combined), list) and schema[combined]:
            return _instance(schema[combined][0], text, depth + 1)
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
    if kind == "object" or isinstance(schema.get("properties"), dict):
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        return {name: _instance(sub, text, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [_instance(schema.get("items"), text, depth + 1) for _ in range(int(schema.get("minItems", 0) or 0))]
    if kind == "string":
        return text
    return PLACEHOLDERS.get(kind, text) if isinstance(kind, str) else text


PLACEHOLDERS = {"string": "example", "integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}


def _placeholder(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "example"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
    return PLACEHOLDERS.get(kind, "example") if isinstance(kind, str) else "example"


def _words(text: str) -> int:
    return len(text.split())


def _choice_count(body: dict[str, Any]) -> int:
    n = body.get("n", 1)
    return n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 128 else 1


def _completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def _chat_body(raw: bytes) -> dict[str, Any] | None:
    """The parsed chat body, or None when it is not a JSON object with a messages list."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return None
    return body


def _json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def _error(status: int, message: str, kind: str) -> web.Response:
    return _json_response({"error": {"message": message, "type": kind}}, status)


def _finish(message: dict[str, Any]) -> str:
    return "tool_calls" if message.get("tool_calls") else "stop"


def _usage(body: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
    """Words, not tokens: a miner's own way of counting, told apart from the endpoint's."""
    prompt = sum(_words(_text_of(m.get("content"))) for m in body["messages"] if isinstance(m, dict))
    answer = _words(_text_of(message.get("content") or message.get("refusal")))
    answer += sum(_words(c["function"]["arguments"]) for c in message.get("tool_calls", []))
    answer *= _choice_count(body)
    return {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer}


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _completion(body: dict[str, Any], message: dict[str, Any], *, usage: bool = True) -> dict[str, Any]:
    completion = {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "localnet",
        "choices": [
            {"index": i, "message": {"role": "assistant", **message}, "finish_reason": _finish(message)}
            for i in range(_choice_count(body))
        ],
    }
    if usage:
        completion["usage"] = _usage(body, message)
    return completion


def _stream_events(body: dict[str, Any], message: dict[str, Any], *, usage: bool = True) -> list[bytes]:
    """The SSE events of a streamed answer: role, one chunk a word (of the
    text or the refusal; a tool call's arguments in two fragments), the
    finish reason, with ``include_usage`` (and ``usage``) a usage chunk, [DONE]."""
    head: dict[str, Any] = {
        "id": _completion_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model") or "localnet",
    }
    usage = usage and _wants_usage(body)
    if usage:  # OpenAI's content chunks then carry "usage": null
        head["usage"] = None

    def event(index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {**head, "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    key = "refusal" if message.get("refusal") else "content"
    text = message.get(key) or ""
    words = text.split(" ") if text else []
    deltas = [{key: word + " "} for word in words[:-1]] + [{key: word} for word in words[-1:]]
    for i, call in enumerate(message.get("tool_calls", [])):
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        opening = {"index": i, "id": call["id"], "type": "function"}
        deltas.append(
            {"tool_calls": [{**opening, "function": {"name": call["function"]["name"], "arguments": arguments[:half]}}]}
        )
        deltas.append({"tool_calls": [{"index": i, "function": {"arguments": arguments[half:]}}]})
    events = []
    for index in range(_choice_count(body)):
        events.append(event(index, {"role": "assistant"}))
        events.extend(event(index, delta) for delta in deltas)
        events.append(event(index, {}, _finish(message)))
    if usage:
        closing = {**head, "choices": [], "usage": _usage(body, message)}
        events.append(b"data: " + orjson.dumps(closing) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


async def _misbehave(
    miner: Miner, request: web.BaseRequest, behaviour: MinerBehaviour, content_type: str | None = None
) -> web.StreamResponse | None:
    """Wait the behaviour's delay, then the answer of a miner whose mode makes
    it fail this request (a flood or drip sent as ``content_type``), or None
    when it answers."""
    delay = behaviour.delay()
    if delay:
        await asyncio.sleep(delay)
    mode = behaviour.mode
    if behaviour.fails_now():
        return _error(500, f"miner {miner.uid} failed", "server_error")
    if mode == "hang":
        return await _wait_for_cancellation()
    if mode == "reset":
        return await _reset_connection(request)
    if mode == "garbage":
        return web.Response(text="<html>this is not JSON", content_type="text/html")
    if mode == "huge":
        return await _send_flood(request, content_type or "application/json")
    if mode == "drip":
        return await _send_drip(request, content_type or "application/json")
    return None


async def _send_stream(
    request: web.BaseRequest, events: list[bytes], chunk_delay: float = 0.0, fault: str = ""
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    for i, piece in enumerate(events):
        if fault and i == 2:  # role and first content are out: now go wrong
            return await _stream_fault(request, response, fault, events[1], chunk_delay)
        if chunk_delay and i > 1:  # role and first content go out at once, the rest trickle
            await asyncio.sleep(chunk_delay)
        await response.write(piece)
    await response.write_eof()
    return response


async def _stream_fault(
    request: web.BaseRequest, response: web.StreamResponse, fault: str, content: bytes, every: float
) -> web.StreamResponse:
    if fault == "reset":
        return await _reset_connection(request)
    if fault == "garbage":
        await response.write(b"data: {this is not json\n\n")
    elif fault == "long_line":
        await response.write(b"data: " + b"x" * (1024 * 1024))  # no end of line for a MiB
    elif fault == "drip":
        with contextlib.suppress(ConnectionError):
            while True:  # content, forever, never a pause long enough to look idle
                await asyncio.sleep(every or DRIP_INTERVAL)
                await response.write(content)
    return await _wait_for_cancellation()


async def _send_audio(
    request: web.BaseRequest, audio: bytes, chunk_delay: float = 0.0, fault: str = ""
) -> web.StreamResponse:
    """The audio in SPEECH_CHUNK pieces, ``chunk_delay`` apart; with a stream
    fault, the first piece goes out and then the fault happens."""
    response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
    await response.prepare(request)
    for i in range(0, len(audio), SPEECH_CHUNK):
        if fault and i:
            return await _audio_fault(request, response, fault, audio[i:], chunk_delay)
        if chunk_delay and i:
            await asyncio.sleep(chunk_delay)
        await response.write(audio[i : i + SPEECH_CHUNK])
    await response.write_eof()
    return response


async def _audio_fault(
    request: web.BaseRequest, response: web.StreamResponse, fault: str, rest: bytes, every: float
) -> web.StreamResponse:
    """A stream fault after the first piece: "reset" cuts the connection,
    "drip" sends the rest a byte at a time, "garbage" (and "long_line", 1 MiB
    of it) sends bytes that are no audio, after which the answer never ends."""
    if fault == "reset":
        await asyncio.sleep(0.05)  # let the first piece reach the reader before the reset
        return await _reset_connection(request)
    if fault == "drip":
        with contextlib.suppress(ConnectionError):
            for i in range(len(rest)):
                await asyncio.sleep(every or DRIP_INTERVAL)
                await response.write(rest[i : i + 1])
            await response.write_eof()
        return response
    await response.write(b"<html>this is not audio" if fault == "garbage" else b"x" * (1024 * 1024))
    return await _wait_for_cancellation()


async def _send_flood(request: web.BaseRequest, content_type: str = "application/json") -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):  # the client stopped reading, as it should
        for _ in range(HUGE_BYTES // len(HUGE_CHUNK)):
            await response.write(HUGE_CHUNK)
        await response.write_eof()
    return response


async def _send_drip(request: web.BaseRequest, content_type: str = "application/json") -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        while True:
            await response.write(b" ")
            await asyncio.sleep(DRIP_INTERVAL)
    return response


async def _reset_connection(request: web.BaseRequest) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A zero linger makes close() send RST rather than FIN: the client
            # sees a reset connection, not a clean end of stream.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return await _wait_for_cancellation()


async def _wait_for_cancellation() -> web.StreamResponse:
    # The server runs with handler_cancellation, so this ends when the client
    # goes away or the subnet stops.
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


# --- the subnet -----------------------------------------------------------------


class LocalSubnet:
    def __init__(
        self,
        n_miners: int = 8,
        *,
        host: str = "127.0.0.1",
        base_port: int = 0,
        behaviour: MinerBehaviour | None = None,
        kind: str = "chat",
        path: str | None = None,
        netuid: int = 1,
        incentives: list[float] | None = None,
    ) -> None:
        """``kind`` is what the miners answer (a key of KIND_PATHS), on ``path``
        (that kind's OpenAI path unless given)."""
        if kind not in KIND_PATHS:
            raise ValueError(f"unknown subnet kind {kind!r}; known: {', '.join(KIND_PATHS)}")
        if n_miners < 1:
            raise ValueError("a subnet needs at least one miner")
        if incentives is not None and len(incentives) != n_miners:
            raise ValueError(f"give one incentive per miner ({n_miners}), not {len(incentives)}")
        if base_port and base_port + n_miners - 1 > 65535:
            raise ValueError(f"ports {base_port}..{base_port + n_miners - 1} do not exist")
        self.host = host
        self.base_port = base_port
        self.kind = kind
        self.path = path or KIND_PATHS[kind]
        self.netuid = netuid
        self.behaviour = behaviour or MinerBehaviour()
        self.miners = [Miner(uid, replace(self.behaviour), host) for uid in range(n_miners)]
        self.incentives = list(incentives) if incentives is not None else default_incentives(n_miners)
        self._control = threading.Lock()
        self._runners: list[web.ServerRunner] = []
        self._upstream_client: httpx.AsyncClient | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<LocalSubnet {len(self.miners)} {self.kind} miners on {self.host}>"

    # --- requests -------------------------------------------------------------

    def _handler(self, miner: Miner) -> Callable[[web.BaseRequest], Any]:
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            if request.path != self.path:
                return _error(404, f"no route {request.path}", "not_found_error")
            if request.method != "POST":
                return _error(405, f"{request.method} is not allowed; use POST", "invalid_request_error")
            raw = await request.read()
            caller = None
            if miner.behaviour.require_auth:
                try:
                    verified = http_auth.verify(
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
                caller = verified.hotkey_ss58
            if self.kind != "chat":
                return await self._answer_media(miner, request, raw, caller)
            body = _chat_body(raw)
            miner.record(SeenRequest(caller, None, body))
            if body is None:
                return _error(400, "the body must be a JSON object with a messages list", "invalid_request_error")
            return await self._answer(miner, request, raw, body)

        return handle

    async def _answer(
        self, miner: Miner, request: web.BaseRequest, raw: bytes, body: dict[str, Any]
    ) -> web.StreamResponse:
        behaviour = miner.behaviour  # one consistent view, even if changed meanwhile
        failed = await _misbehave(miner, request, behaviour)
        if failed is not None:
            return failed
        mode = behaviour.mode
        if behaviour.upstream and mode == "ok":
            return await self._forward(request, behaviour, raw, body)
        message = miner.answer(body, mode)
        if body.get("stream") is True:
            events = _stream_events(body, message, usage=behaviour.report_usage)
            return await _send_stream(request, events, behaviour.chunk_delay, behaviour.stream_fault)
        return _json_response(_completion(body, message, usage=behaviour.report_usage))

    async def _answer_media(
        self, miner: Miner, request: web.BaseRequest, raw: bytes, caller: str | None
    ) -> web.StreamResponse:
        try:
            parsed = media.read_request(self.kind, raw, request.headers.get("Content-Type", ""))
        except media.BadRequest as exc:
            miner.record(SeenRequest(caller, None, None))
            return _json_response(media.error_body(str(exc)), 400)
        miner.record(SeenRequest(caller, None, parsed.body))
        body = parsed.body
        behaviour = miner.behaviour  # one consistent view, even if changed meanwhile
        failed = await _misbehave(miner, request, behaviour, "audio/wav" if self.kind == "speech" else None)
        if failed is not None:
            return failed
        empty = behaviour.mode == "empty"
        if behaviour.mode == "refuse" and self.kind in ("image", "speech"):
            return _json_response(media.refusal_body(miner.uid), 400)
        if self.kind == "embeddings":
            return _json_response(media.embeddings_answer(body, empty=empty))
        if self.kind == "image":  # big pictures take a while: not on the loop every miner shares
            return _json_response(await asyncio.to_thread(media.images_answer, body, miner.uid, empty=empty))
        if self.kind == "speech":
            if empty:
                return web.Response(body=b"", content_type="audio/wav")
            audio = await asyncio.to_thread(media.speech_wav, body["input"], float(body.get("speed", 1.0)))
            return await _send_audio(request, audio, behaviour.chunk_delay, behaviour.stream_fault)
        answer, content_type = media.transcription_answer(body, parsed.upload, miner.uid, empty=empty)
        return web.Response(body=answer, headers={"Content-Type": content_type})

    async def _forward(
        self, request: web.BaseRequest, behaviour: MinerBehaviour, raw: bytes, body: dict[str, Any]
    ) -> web.StreamResponse:
        url = behaviour.upstream.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if behaviour.upstream_api_key:
            headers["Authorization"] = f"Bearer {behaviour.upstream_api_key}"
        payload = orjson.dumps({**body, "model": behaviour.upstream_model}) if behaviour.upstream_model else raw
        if self._upstream_client is None:
            self._upstream_client = httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT, trust_env=False)
        response = web.StreamResponse()
        try:
            async with self._upstream_client.stream("POST", url, content=payload, headers=headers) as upstream:
                response.set_status(upstream.status_code)
                for name in ("Content-Type", "Content-Encoding"):
                    if name in upstream.headers:
                        response.headers[name] = upstream.headers[name]
                await response.prepare(request)
                async for piece in upstream.aiter_raw():
                    await response.write(piece)
        except httpx.HTTPError as exc:
            log.warning("upstream %s failed: %s", url, exc)
            if not response.prepared:
                return _error(502, f"upstream failed: {type(exc).__name__}", "upstream_error")
            # Half an answer is already out; cut the connection so it cannot pass for a whole one.
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response

    # --- serving --------------------------------------------------------------

    async def start_servers(self) -> None:
        """Listen on every miner's port in the running event loop."""
        try:
            for i, miner in enumerate(self.miners):
                await self._listen(miner, self.base_port + i if self.base_port else 0)
        except BaseException:
            await self.stop_servers()
            raise
        log.info("local subnet: %d miners on %s", len(self.miners), ", ".join(m.axon for m in self.miners))

    async def _listen(self, miner: Miner, port: int) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"miner {miner.uid} cannot listen on {self.host}:{port}: {exc.strerror}") from exc
        miner.port = sock.getsockname()[1]
        # handler_cancellation: a hung or dripping miner stops when its client gives up.
        server = web.Server(
            self._handler(miner), handler_cancellation=True, access_log=None, request_factory=_large_bodies(miner)
        )
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE)
        await runner.setup()
        self._runners.append(runner)
        await web.SockSite(runner, sock, backlog=1024).start()

    async def stop_servers(self) -> None:
        runners, self._runners = self._runners, []
        await asyncio.gather(*(runner.cleanup() for runner in runners), return_exceptions=True)
        if self._upstream_client is not None:
            client, self._upstream_client = self._upstream_client, None
            await client.aclose()

    async def serve(
        self, *, until: asyncio.Event | None = None, on_ready: Callable[[LocalSubnet], None] | None = None
    ) -> None:
        """Run the miners in the current event loop until `until` is set (or
        forever); `on_ready` is called once every miner listens."""
        await self.start_servers()
        try:
            if on_ready is not None:
                on_ready(self)
            await (until or asyncio.Event()).wait()
        finally:
            await self.stop_servers()

    def start(self) -> LocalSubnet:
        """Serve every miner from one background thread; returns once all listen."""
        if self._thread is not None:
            raise RuntimeError("this local subnet is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            await self.serve(until=self._stopping, on_ready=lambda _: ready.set())

        def thread_main() -> None:
            try:
                with asyncio.Runner(loop_factory=new_event_loop) as runner:
                    runner.run(run())
            except BaseException as exc:
                failure.append(exc)
            finally:
                ready.set()

        self._thread = threading.Thread(target=thread_main, name="localnet", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            self.stop()
            raise TimeoutError(f"the local subnet did not start within {START_TIMEOUT:g}s")
        if failure:
            self._thread.join()
            self._thread = self._loop = self._stopping = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop every miner (in-flight answers are cut) and join the thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout=START_TIMEOUT)
        if thread.is_alive():
            log.warning("the local subnet's thread did not stop within %gs", START_TIMEOUT)
        self._thread = self._loop = self._stopping = None

    def __enter__(self) -> LocalSubnet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- control --------------------------------------------------------------

    def miner(self, uid: int) -> Miner:
        if not 0 <= uid < len(self.miners):
            raise ValueError(f"no miner with uid {uid} (the subnet has {len(self.miners)})")
        return self.miners[uid]

    def set_behaviour(self, uids: int | Iterable[int], **changes: Any) -> None:
        """Change how the given miners behave from their next request on."""
        targets = [self.miner(uid) for uid in ([uids] if isinstance(uids, int) else uids)]
        with self._control:
            # Build every new behaviour first, so a bad change alters none of them.
            updated = [replace(miner.behaviour, **changes) for miner in targets]
            for miner, behaviour in zip(targets, updated, strict=True):
                miner.behaviour = behaviour

    def reset(self) -> None:
        """Every miner back to the subnet's default behaviour, histories cleared."""
        with self._control:
            for miner in self.miners:
                miner.behaviour = replace(self.behaviour)
                miner.forget()

    def snapshot(self) -> dict[str, Any]:
        """The metagraph snapshot (DESIGN §6) the endpoint loads."""
        return {
            "network": "local",
            "netuid": self.netuid,
            "block": int(time.time() // 12),  # a chain makes a block every 12 s
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
        """Write the snapshot atomically (a reader never sees half a file); returns its absolute path."""
        target = Path(path).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(orjson.dumps(self.snapshot(), option=orjson.OPT_INDENT_2))
            os.chmod(partial, 0o644)  # mkstemp makes it private; the endpoint may run as another user
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return target
