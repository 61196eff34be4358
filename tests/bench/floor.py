"""The floor of the stack, for benchmarks only (tests/bench/test_fast.py).

A bare async Django view that forwards the request body to an
OpenAI-compatible upstream with one shared httpx client and hands the answer
back, JSON or SSE: no key, credits, rate limits, logs or miner signature. It
is served through Django's full middleware stack (its URL is not one of the
gateway routes of endpoint.asgi), so what a gateway route costs above it is
what the gateway itself adds.

Mounted at /bench/floor/<index> by tests/bench/urls.py, the URLconf of the
bench server's settings (tests.bench.settings); BENCH_FLOOR_UPSTREAMS lists
the upstream URLs and <index> picks one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

TIMEOUT = httpx.Timeout(60.0, connect=5.0)
HEADERS = {"Content-Type": "application/json"}

_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
        _client = httpx.AsyncClient(timeout=TIMEOUT, limits=limits, trust_env=False)
    return _client


def _wants_stream(body: bytes) -> bool:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and parsed.get("stream") is True


@csrf_exempt
async def forward(request, index: int):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    upstreams = settings.BENCH_FLOOR_UPSTREAMS
    if not 0 <= index < len(upstreams):
        raise Http404("no such upstream")
    url, body = upstreams[index], request.body
    if not _wants_stream(body):
        answer = await client().post(url, content=body, headers=HEADERS)
        return HttpResponse(answer.content, status=answer.status_code, content_type=answer.headers.get("content-type"))
    upstream = await client().send(client().build_request("POST", url, content=body, headers=HEADERS), stream=True)

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for piece in upstream.aiter_raw():
                yield piece
        finally:
            await upstream.aclose()

    return StreamingHttpResponse(
        relay(), status=upstream.status_code, content_type=upstream.headers.get("content-type", "text/event-stream")
    )
