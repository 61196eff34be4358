"""Bodies are bounded before any work: size before reading (even without a
key), then depth, NUL characters and every field, before credits are held."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import orjson
import pytest
from asgiref.sync import sync_to_async

from endpoint.asgi import application
from keys.models import ApiKey
from logs.models import Request

from .conftest import HELLO, bearer

LIMIT = 1024 * 1024


async def call_asgi(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict, dict, int]:
    """Send ``application`` a POST with these headers and a body that never
    comes; return status, headers, JSON body and how often it asked for the body."""
    reads = 0
    sent: list[dict] = []

    async def receive():
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 5555), "server": ("testserver", 80),
    }  # fmt: skip
    await application(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), orjson.loads(body), reads


@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions", "/app/send/", "/api/admin/keys/", "/admin/"])
async def test_declared_huge_body_is_refused_without_reading_it(path):
    status, headers, body, reads = await call_asgi(path, [(b"content-length", b"500000000")])
    assert status == 413
    assert reads == 0  # not one byte read: no memory, no temp file, no auth lookup
    assert headers[b"connection"] == b"close"
    code = body["error"]["code"] if path.startswith("/v1/") else body["code"]
    assert code == "PayloadTooLarge"


async def test_body_without_length_is_cut_just_past_the_limit():
    status, _, body, reads = await call_asgi("/chat", [(b"transfer-encoding", b"chunked")])
    assert status == 413 and body["code"] == "PayloadTooLarge"
    assert reads == LIMIT // 65536 + 1  # the chunk that crossed the limit was the last one read


async def test_bad_content_length_is_400():
    status, _, body, reads = await call_asgi("/chat", [(b"content-length", b"lots")])
    assert status == 400 and body["code"] == "InvalidRequestBody" and reads == 0


def raw_post(base: str, path: str, head: str, chunks) -> bytes:
    """A POST over a plain socket (httpx would not send an endless chunked body)."""
    url = urlparse(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {url.hostname}\r\n{head}\r\n".encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before we were done: the point
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            part = sock.recv(65536)
            if not part:
                break
            answer += part
    return answer


def chunked(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        piece = data[i : i + size]
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def test_chunked_upload_to_a_real_server_stops_at_the_limit(live_server_url):
    started = time.monotonic()
    answer = raw_post(live_server_url, "/chat", "Transfer-Encoding: chunked\r\n", chunked(b"x" * (64 * LIMIT)))
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"PayloadTooLarge"' in answer
    assert time.monotonic() - started < 10


def test_small_chunked_body_passes_the_guard(live_server_url):
    body = orjson.dumps({"messages": HELLO})
    answer = raw_post(live_server_url, "/chat", "Transfer-Encoding: chunked\r\n", chunked(body, 7))
    assert answer.startswith(b"HTTP/1.1 401") and b"APIKeyMissing" in answer


def nested(depth: int) -> dict:
    value: object = "deep"
    for _ in range(depth):
        value = {"a": [value]}
    return value


async def credits_and_logs(key) -> tuple[int, list[str]]:
    def read():
        return ApiKey.objects.get(pk=key.key.pk).credits, list(Request.objects.values_list("api_error", flat=True))

    return await sync_to_async(read)()


HOSTILE_BODIES = {
    "deep extra field (past orjson's write limit)": {"model": "auto", "messages": HELLO, "metadata": nested(150)},
    "deep content parts": {"model": "auto", "messages": [{"role": "user", "content": [nested(70)]}]},
    "NUL in content": {"model": "auto", "messages": [{"role": "user", "content": "hi\x00there"}]},
    "NUL in a key": {"model": "auto", "messages": HELLO, "weird\x00": 1},
    "too many messages": {"model": "auto", "messages": HELLO * 3000},
}


@pytest.mark.parametrize("case", list(HOSTILE_BODIES))
async def test_hostile_openai_bodies_are_400_and_cost_nothing(api, key, network, case):
    before, _ = await credits_and_logs(key)
    r = await api.post("/v1/chat/completions", json=HOSTILE_BODIES[case], headers=bearer(key))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "InvalidRequestBody"
    after, logged = await credits_and_logs(key)
    assert after == before
    assert logged == ["InvalidRequestBody"]  # refused, and logged
    assert not any(m.seen for m in network.miners)


async def test_deep_seed_body_is_400(api, key, network):
    r = await api.post("/chat", json={"messages": HELLO, "extra": nested(65)}, headers=bearer(key))
    assert r.status_code == 400 and "nested deeper than 64" in r.json()["detail"]
    assert not any(m.seen for m in network.miners)


async def test_repeated_uids_are_one_miner_each_and_the_call_is_logged(api, key, network):
    many = [0, 1] * 2000
    r = await api.post(
        "/chat", json={"messages": HELLO, "uids": many, "respond_on_first_success": False}, headers=bearer(key)
    )
    assert r.status_code == 200, r.text
    assert sorted(c["uid"] for c in r.json()["choices"]) == [0, 1]
    credits, logged = await credits_and_logs(key)
    assert credits == 1000 - 2 and logged == [""]


async def test_every_uid_of_a_large_request_is_logged_within_the_column(api, key, network):
    every = list(range(len(network.miners))) + list(range(1000, 1100))
    r = await api.post("/chat", json={"messages": HELLO, "uids": every}, headers=bearer(key))
    assert r.status_code == 400 and r.json()["code"] == "UnknownUid"
    strategy = await sync_to_async(lambda: Request.objects.get().strategy)()
    assert len(strategy) <= 200 and strategy.startswith("uids:0,1,") and strategy.endswith("uids)")
    assert await credits_and_logs(key) == (1000, ["UnknownUid"])
