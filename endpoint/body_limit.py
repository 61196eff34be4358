"""Request bodies are bounded before anything else sees them.

An ASGI wrapper around the whole project: before Django reads a body, before
any key or session is looked at, a declared ``Content-Length`` over the limit
is answered 413 at once without reading a byte of it, and a body that comes
without one (chunked) is counted as it arrives and cut at the limit + 1 byte.
What passes is handed on from memory: Django's handler never spools a body to
a temporary file (``FILE_UPLOAD_MAX_MEMORY_SIZE`` is at least the limit), so
an anonymous client can't fill the disk or hold a worker on a huge upload.
"""

from __future__ import annotations

import logging
import uuid

import orjson
from django.conf import settings

from endpoint.core.errors import is_openai_path
from endpoint.core.request_ids import answer_id, client_request_id

log = logging.getLogger(__name__)


def declared_length(scope) -> int | None:
    """The request's Content-Length; None when absent, -1 when not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


def error_body(path: str, status: int, code: str, detail: str) -> bytes:
    """The error in the route's own shape: OpenAI's on /v1, the seed's elsewhere."""
    if is_openai_path(path):
        return orjson.dumps(
            {"error": {"message": detail, "type": "invalid_request_error", "param": None, "code": code}}
        )
    return orjson.dumps({"detail": detail, "code": code})


async def refuse(scope, send, status: int, code: str, detail: str) -> None:
    body = error_body(scope.get("path", ""), status, code, detail)
    # A refusal comes before any view, so no request log holds it; it still
    # gets an id, as every answer does, so a client can quote it and an
    # operator find it in the warning below.
    request_id = answer_id(uuid.uuid4())
    log.warning("refused %s to %s before reading it: %s %s", request_id, scope.get("path", ""), status, code)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the body is not read, so the connection can't be reused.
        (b"connection", b"close"),
        (b"x-request-id", request_id.encode()),
        (b"x-should-retry", b"false"),  # the same body would be refused again
    ]
    if theirs := client_request_id(_headers(scope)):
        headers.append((b"x-client-request-id", theirs.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _headers(scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", ())}


class BoundedBody:
    """Wraps an ASGI app; see the module's docstring."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = upload_limit(scope.get("path", ""))
        declared = declared_length(scope)
        if declared is not None and declared < 0:
            await refuse(scope, send, 400, "InvalidRequestBody", "Content-Length is not a number.")
            return
        if declared is not None and declared > limit:
            await refuse(scope, send, 413, "PayloadTooLarge", too_large(limit))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away before it finished sending
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await refuse(scope, send, 413, "PayloadTooLarge", too_large(limit))
                return
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(b"".join(chunks), receive), send)


def upload_limit(path: str) -> int:
    """The largest body ``path`` takes: uploads are bigger than any JSON body."""
    if path.rstrip("/") in settings.UPLOAD_PATHS:
        return max(settings.MAX_UPLOAD_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large(limit: int) -> str:
    return f"Request body is larger than the configured limit ({limit} bytes)."


def replay(body: bytes, receive):
    """A ``receive`` that gives the body read already, then the client's own
    messages (a disconnect, for streaming answers)."""
    sent = False

    async def receive_again():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again
