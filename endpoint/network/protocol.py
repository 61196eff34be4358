"""All outbound HTTP to miners: one shared keep-alive client, btauth/1
signing, timeouts, a cap on answer size, and every failure turned into a
MinerResult with a short error text. Nothing else talks to miners.

The client is aiohttp's: httpx's connection pool scans every pooled
connection for each request, which at a few hundred miner calls in flight
cost more CPU than the rest of the gateway together (measured with py-spy).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from django.conf import settings
from yarl import URL

from endpoint.core.errors import MinerFailure
from endpoint.core.loopbound import PerLoop

from .address_policy import axon_url
from .btauth import sign_request
from .metagraph import NeuronInfo
from .structured import AnswerFormat

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0


@dataclass(frozen=True)
class Wire:
    """How a non-chat kind talks: the body's content type, how big an answer
    may be, and ``read(body, content_type, status) -> (log text, answer)``,
    which raises MinerFailure for an answer that is not of the kind.
    ``streamed``: the answer is relayed as its bytes come (speech), and
    ``read`` then sees only the first bytes."""

    content_type: str
    cap: int
    read: Any
    streamed: bool = False


@dataclass
class MinerResult:
    uid: int
    hotkey: str
    ok: bool
    content: str = ""
    error: str = ""
    status: int | None = None
    response_ms: float = 0.0
    answer: dict[str, Any] | None = field(default=None, repr=False)  # the miner's JSON, when ok

    def seed_choice(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "message": {"role": "assistant", "content": self.content},
            "uid": self.uid,
            "responder_hotkey": self.hotkey,
            "response_ms": round(self.response_ms, 1),
        }

    def seed_failure(self, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "error": self.error,
            "uid": self.uid,
            "responder_hotkey": self.hotkey,
            "response_ms": round(self.response_ms, 1),
        }


# How a miner's connection can break (aiohttp's LineTooLong is an
# HttpProcessingError, neither a ClientError nor a ValueError).
BROKEN = (aiohttp.ClientError, aiohttp.http_exceptions.HttpProcessingError, OSError, ValueError)

# One session per event loop: a client session is bound to the loop it was made on.
_sessions: PerLoop[None, aiohttp.ClientSession] = PerLoop()


def _new_session(_: None = None) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30, ttl_dns_cache=None),
        auto_decompress=True,
        trust_env=False,
        skip_auto_headers=("User-Agent",),
    )


def shared_session() -> aiohttp.ClientSession:
    session = _sessions.get(None, _new_session)
    if session.closed:
        session = _sessions.set(None, _new_session())
    return session


async def close_shared_session() -> None:
    for session in _sessions.pop():
        await session.close()


def check_axon(axon: str, *, allow_private: bool) -> str:
    """The miner's base URL, or MinerFailure when the address policy refuses it.

    ``allow_private`` is for the local network only: there loopback and
    private addresses (and host names) are dialled as they are.
    """
    if not axon:
        raise MinerFailure("miner serves no axon")
    url, refused = axon_url(axon, allow_private)
    if refused:
        raise MinerFailure(refused)
    return url


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    too_big = MinerFailure(f"miner answer is larger than {cap // 1024} KiB", response.status)
    if response.content_length is not None and response.content_length > cap:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > cap:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _says_something(message: dict[str, Any]) -> bool:
    # A tool call or a refusal is an answer too, with no text.
    text = [message.get("content"), message.get("refusal")]
    calls = message.get("tool_calls")
    return any(isinstance(t, str) and t.strip() for t in text) or (isinstance(calls, list) and bool(calls))


def said(message: dict[str, Any]) -> str:
    """What a message says, for the log and the seed's answer: its text (else
    its refusal), then its tool calls as compact JSON; "" if nothing."""
    parts = [next((t for t in (message.get("content"), message.get("refusal")) if isinstance(t, str) and t), "")]
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        parts.append(orjson.dumps(calls).decode())
    return "\n".join(p for p in parts if p)


def answer_texts(result: MinerResult) -> list[str]:
    """What each choice of a miner's answer says (for counting its tokens)."""
    choices = (result.answer or {}).get("choices")
    messages = [c.get("message") for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []
    return [said(m) for m in messages if isinstance(m, dict)] or [result.content]


def _message_of(answer: Any) -> dict[str, Any]:
    try:
        message = answer["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise MinerFailure("miner answer is not an OpenAI chat completion") from None
    if not isinstance(message, dict):
        raise MinerFailure("miner answer is not an OpenAI chat completion")
    if not _says_something(message):
        raise MinerFailure("miner answered with empty content")
    return message


def _check_format(expect: AnswerFormat, message: dict[str, Any], status: int) -> None:
    if not _says_something(message):
        raise MinerFailure("miner answered with empty content", status)
    try:
        expect.check(message)
    except MinerFailure as exc:
        raise MinerFailure(str(exc), status) from None


def _error_text(body: bytes) -> str:
    try:
        error = orjson.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return str(message)[:200] if message else ""
    except (orjson.JSONDecodeError, AttributeError):
        return ""


@functools.lru_cache(maxsize=4096)
def _target(url: str, path: str) -> URL:
    """The miner's URL parsed once, as the wire will carry it: a configured
    path is normalised already (endpoint.core.config), one stored before is
    normalised here the same way, so the signature always covers what is sent."""
    return URL(url + path)


async def _signed_post(
    url: str,
    path: str,
    payload: bytes,
    keypair: Any,
    hotkey: str,
    timeout: float,
    total: float | None,
    content_type: str = "application/json",
) -> aiohttp.ClientResponse:
    """POST the body signed for the miner ``hotkey``; the response once its
    status is a success, for the caller to read and release. Any other
    status is read (capped), released and raised as MinerFailure."""
    target = _target(url, path)
    # Signed: the request target as aiohttp will send it (it sends a URL object as is).
    headers = sign_request(keypair, path=target.raw_path_qs, body=payload, receiver=hotkey)
    headers["Content-Type"] = content_type
    request_timeout = aiohttp.ClientTimeout(total=total, connect=min(CONNECT_TIMEOUT, timeout))
    resp = await shared_session().post(
        target, data=payload, headers=headers, timeout=request_timeout, allow_redirects=False
    )
    if resp.status < 300:
        return resp
    async with resp:
        body = await _read_capped(resp, settings.MAX_MINER_RESPONSE_BYTES)
    if resp.status == 401:
        raise MinerFailure(f"miner refused our signature: {_error_text(body) or 'HTTP 401'}", 401)
    detail = _error_text(body)
    raise MinerFailure(f"miner answered HTTP {resp.status}" + (f": {detail}" if detail else ""), resp.status)


async def _post(
    url: str,
    path: str,
    payload: bytes,
    keypair: Any,
    neuron: NeuronInfo,
    timeout: float,
    expect: AnswerFormat | None,
    wire: Wire | None,
) -> MinerResult:
    content_type = wire.content_type if wire is not None else "application/json"
    async with await _signed_post(url, path, payload, keypair, neuron.hotkey, timeout, timeout, content_type) as resp:
        body = await _read_capped(resp, wire.cap if wire is not None else settings.MAX_MINER_RESPONSE_BYTES)
    if wire is not None:
        content, answer = wire.read(body, resp.content_type, resp.status)
        return MinerResult(neuron.uid, neuron.hotkey, True, content=content, status=resp.status, answer=answer)
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MinerFailure("miner answered with invalid JSON", resp.status) from None
    message = _message_of(answer)
    if expect is not None:
        _check_format(expect, message, resp.status)
    content = said(message)
    return MinerResult(neuron.uid, neuron.hotkey, True, content=content, status=resp.status, answer=answer)


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "timed out connecting to miner"
    if isinstance(exc, TimeoutError):
        return f"miner did not answer within {timeout:g}s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "could not connect to miner (connection refused or unreachable)"
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError)):
        return "miner closed the connection without a complete answer"
    if isinstance(exc, aiohttp.ClientError):
        return f"HTTP error talking to miner ({type(exc).__name__})"
    return f"unexpected error talking to miner ({type(exc).__name__})"


async def query_miner(
    neuron: NeuronInfo,
    payload: bytes,
    *,
    keypair: Any,
    path: str,
    timeout: float,
    allow_private: bool,
    expect: AnswerFormat | None = None,
    wire: Wire | None = None,
) -> MinerResult:
    """Send the signed chat body (or, with a ``wire``, another kind's) to one
    miner; never raises, never outlives ``timeout`` (+ scheduling). An
    answer not of the format the request asked for (``expect``, or the
    wire's reader) is the miner's failure."""
    started = time.perf_counter()
    try:
        if not neuron.active:
            raise MinerFailure("miner is not active on the subnet")
        url = check_axon(neuron.axon, allow_private=allow_private)
        async with asyncio.timeout(timeout):
            result = await _post(url, path, payload, keypair, neuron, timeout, expect, wire)
    except MinerFailure as exc:
        result = MinerResult(neuron.uid, neuron.hotkey, False, error=str(exc), status=exc.status)
    except (TimeoutError, *BROKEN) as exc:
        result = MinerResult(neuron.uid, neuron.hotkey, False, error=_describe(exc, timeout))
    result.response_ms = (time.perf_counter() - started) * 1000
    if not result.ok:
        log.info("miner uid=%s failed in %.0f ms: %s", neuron.uid, result.response_ms, result.error)
    return result


# --- streaming ------------------------------------------------------------------


class _Opened:
    resp: aiohttp.ClientResponse | None = None


@contextlib.contextmanager
def _opening(timeout: float):
    """While an answer is being opened: on any failure the response opened so
    far is closed, and a broken or slow connection becomes a MinerFailure."""
    opened = _Opened()
    try:
        yield opened
    except BaseException as exc:
        if opened.resp is not None:
            opened.resp.close()
        if isinstance(exc, (TimeoutError, *BROKEN)):
            raise MinerFailure(_describe(exc, timeout)) from None
        raise


@dataclass
class MinerStream:
    """A miner's answer arriving as chat.completion.chunk dicts.

    ``opening`` holds the chunks read up to and including the first one with
    content (text, a refusal or a tool call); ``rest`` yields the remainder.
    ``close()`` ends the connection.
    """

    uid: int
    hotkey: str
    opening: list[dict[str, Any]]
    rest: Any  # async iterator of chunk dicts
    response_ms: float
    close: Any  # async callable

    @property
    def content(self) -> str:
        return StreamedAnswer.of(self.opening).text

    @property
    def first_content(self) -> int:
        """Where in ``opening`` the answer's content starts (an answer checked
        against a format was read whole, so more may follow it there)."""
        return next((i for i, c in enumerate(self.opening) if _says_something(_delta_of(c))), len(self.opening) - 1)


def _delta_of(chunk: dict[str, Any]) -> dict[str, Any]:
    try:
        delta = chunk["choices"][0].get("delta")
    except (KeyError, IndexError, TypeError, AttributeError):
        return {}
    return delta if isinstance(delta, dict) else {}


def is_usage_only(chunk: dict[str, Any]) -> bool:
    """A stream's closing usage chunk (``choices`` empty, ``usage`` set), as
    OpenAI sends with ``stream_options.include_usage``."""
    return not chunk.get("choices") and isinstance(chunk.get("usage"), dict)


def delta_text(chunk: dict[str, Any]) -> str:
    text = _delta_of(chunk).get("content")
    return text if isinstance(text, str) else ""


class StreamedAnswer:
    """A streamed answer put back together from its deltas, for the log:
    the text, the refusal and the tool calls (their argument fragments joined)."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}

    def add(self, chunk: dict[str, Any]) -> None:
        delta = _delta_of(chunk)
        for key, parts in (("content", self.content), ("refusal", self.refusal)):
            if isinstance(delta.get(key), str):
                parts.append(delta[key])
        calls = delta.get("tool_calls")
        for piece in calls if isinstance(calls, list) else []:
            if not isinstance(piece, dict):
                continue
            index = piece.get("index") if isinstance(piece.get("index"), int) else 0
            call = self.tool_calls.setdefault(index, {"id": "", "type": "function", "function": {}})
            if isinstance(piece.get("id"), str):
                call["id"] = piece["id"]
            function = piece.get("function")
            for key, value in function.items() if isinstance(function, dict) else ():
                if isinstance(value, str):
                    call["function"][key] = call["function"].get(key, "") + value

    @classmethod
    def of(cls, chunks: list[dict[str, Any]]) -> StreamedAnswer:
        answer = cls()
        for chunk in chunks:
            answer.add(chunk)
        return answer

    @property
    def message(self) -> dict[str, Any]:
        """The answer as a non-streamed message would have it."""
        calls = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return {"content": "".join(self.content), "refusal": "".join(self.refusal), "tool_calls": calls}

    @property
    def text(self) -> str:
        return said(self.message)


def _as_delta(message: dict[str, Any]) -> dict[str, Any]:
    delta: dict[str, Any] = {"role": "assistant"}
    for key in ("content", "refusal"):
        if isinstance(message.get(key), str):
            delta[key] = message[key]
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(calls) if isinstance(c, dict)]
    return delta


async def _next_piece(
    resp: aiohttp.ClientResponse, read: Any, idle_timeout: float, deadline: float | None, what: str
) -> bytes:
    """``read()`` of a miner's body, given at most ``idle_timeout`` and never
    past ``deadline`` (loop time); a pause, the deadline or a broken
    connection is a MinerFailure naming it (``what``: the stream, the answer)."""
    loop = asyncio.get_running_loop()
    wait = idle_timeout if deadline is None else min(idle_timeout, deadline - loop.time())
    try:
        async with asyncio.timeout(max(0.0, wait)):
            return await read()
    except TimeoutError:
        late = deadline is not None and loop.time() >= deadline
        stopped = f"miner stopped sending its {what}"
        raise MinerFailure("miner did not finish within the timeout" if late else stopped, resp.status) from None
    except BROKEN as exc:
        raise MinerFailure(f"miner's {what} broke off ({type(exc).__name__})", resp.status) from None


async def _sse_chunks(resp: aiohttp.ClientResponse, cap: int, idle_timeout: float, deadline: float | None = None):
    """Chunk dicts from an SSE body; a plain JSON completion becomes one chunk.

    Every way a miner can fail mid-answer ends in a MinerFailure naming it: a
    broken connection, invalid JSON, an over-long answer, a pause longer
    than ``idle_timeout``, or not finishing by ``deadline`` (loop time: the
    request's own timeout bounds the whole answer)."""
    if resp.content_type == "application/json":
        answer = orjson.loads(await _read_capped(resp, cap))
        message = _message_of(answer)
        finish = answer["choices"][0].get("finish_reason")
        yield {"choices": [{"index": 0, "delta": _as_delta(message), "finish_reason": None}]}
        yield {"choices": [{"index": 0, "delta": {}, "finish_reason": finish if isinstance(finish, str) else "stop"}]}
        if isinstance(answer.get("usage"), dict):
            yield {"choices": [], "usage": answer["usage"]}
        return
    size = 0
    while True:
        line = await _next_piece(resp, resp.content.readline, idle_timeout, deadline, "stream")
        if not line:
            return
        size += len(line)
        if size > cap:
            raise MinerFailure(f"miner answer is larger than {cap // 1024} KiB", resp.status)
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise MinerFailure("miner streamed invalid JSON", resp.status) from None
        if isinstance(chunk, dict):
            yield chunk


async def open_miner_stream(
    neuron: NeuronInfo,
    payload: bytes,
    *,
    keypair: Any,
    path: str,
    timeout: float,
    allow_private: bool,
    expect: AnswerFormat | None = None,
) -> MinerStream:
    """Start a streamed answer and read it up to its first content.

    Raises MinerFailure (with a short text) if the miner fails before any
    content, or gives none within ``timeout``. With ``expect`` (a format the
    request asked for) the whole answer is read first and checked, as a
    partial one can't be: only a valid answer is relayed.
    """
    started = time.perf_counter()
    url = check_axon(neuron.axon, allow_private=allow_private) if neuron.active else None
    if url is None:
        raise MinerFailure("miner is not active on the subnet")
    deadline = asyncio.get_running_loop().time() + timeout  # for the whole answer, not each line
    with _opening(timeout) as opened:
        async with asyncio.timeout(timeout):
            # No total timeout on the connection: the chunks enforce ``deadline``.
            resp = opened.resp = await _signed_post(url, path, payload, keypair, neuron.hotkey, timeout, total=None)
            chunks = _sse_chunks(resp, settings.MAX_MINER_RESPONSE_BYTES, idle_timeout=timeout, deadline=deadline)
            opening: list[dict[str, Any]] = []
            async for chunk in chunks:
                opening.append(chunk)
                if expect is None and _says_something(_delta_of(chunk)):  # text, a refusal or a tool call
                    break
            if expect is not None:
                _check_format(expect, StreamedAnswer.of(opening).message, resp.status)
            elif not opening or not _says_something(_delta_of(opening[-1])):
                raise MinerFailure("miner answered with empty content", resp.status)

    async def close() -> None:
        await chunks.aclose()
        resp.close()

    return MinerStream(
        uid=neuron.uid,
        hotkey=neuron.hotkey,
        opening=opening,
        rest=chunks,
        response_ms=(time.perf_counter() - started) * 1000,
        close=close,
    )


# --- answers relayed as their bytes come (speech) -------------------------------


@dataclass
class MinerBytes:
    """A miner's answer relayed as its bytes come: ``first`` arrived first
    (checked by the wire's reader, ``content`` says what it is for the log),
    ``rest`` yields the remainder; ``close()`` ends the connection."""

    uid: int
    hotkey: str
    first: bytes
    content_type: str
    content: str
    rest: Any  # async iterator of bytes
    response_ms: float
    close: Any  # async callable


async def _byte_chunks(resp: aiohttp.ClientResponse, cap: int, idle_timeout: float, deadline: float):
    """The body's bytes as they come; a broken connection, a pause longer than
    ``idle_timeout``, a body over ``cap`` or one not done by ``deadline``
    (loop time) ends in a MinerFailure naming it."""
    size = 0
    while True:
        chunk = await _next_piece(resp, resp.content.readany, idle_timeout, deadline, "answer")
        if not chunk:
            return
        size += len(chunk)
        if size > cap:
            raise MinerFailure(f"miner answer is larger than {cap // 1024} KiB", resp.status)
        yield chunk


async def open_miner_bytes(
    neuron: NeuronInfo,
    payload: bytes,
    *,
    keypair: Any,
    path: str,
    timeout: float,
    allow_private: bool,
    wire: Wire,
    expect: AnswerFormat | None = None,
) -> MinerBytes:
    """Start an answer relayed as it comes and read its first bytes, which the
    wire's reader checks (kind, content type). Raises MinerFailure if the
    miner fails before that or within ``timeout`` sends nothing; the timeout
    bounds the whole answer."""
    started = time.perf_counter()
    url = check_axon(neuron.axon, allow_private=allow_private) if neuron.active else None
    if url is None:
        raise MinerFailure("miner is not active on the subnet")
    deadline = asyncio.get_running_loop().time() + timeout
    with _opening(timeout) as opened:
        async with asyncio.timeout(timeout):
            resp = opened.resp = await _signed_post(
                url, path, payload, keypair, neuron.hotkey, timeout, None, wire.content_type
            )
            if resp.content_length is not None and resp.content_length > wire.cap:
                raise MinerFailure(f"miner answer is larger than {wire.cap // 1024} KiB", resp.status)
            chunks = _byte_chunks(resp, wire.cap, timeout, deadline)
            first = b""
            async for chunk in chunks:
                first = chunk
                break
            content, _ = wire.read(first, resp.content_type, resp.status)

    async def close() -> None:
        await chunks.aclose()
        resp.close()

    return MinerBytes(
        uid=neuron.uid,
        hotkey=neuron.hotkey,
        first=first,
        content_type=resp.content_type,
        content=content,
        rest=chunks,
        response_ms=(time.perf_counter() - started) * 1000,
        close=close,
    )
