"""Every /v1 answer any test produces is checked against OpenAI's own schemas.

A pytest plugin (loaded by tests/conftest.py). It wraps the ASGI application
that the in-process client (``api``) and the live server (``live_server_url``:
the openai SDK, httpx, LangChain) both serve, and validates each /v1 answer as
it is sent: a 200 body, each ``data:`` event of a stream, every 4xx/5xx JSON.
What does not match is recorded and fails the test that caused it, naming the
path, the schema and jsonschema's complaint. Servers started in other
processes (``manage.py start`` tests) are not seen.

The schemas are the vendored subset of OpenAI's openapi.json
(tests/endpoint/api/openai_schemas.json), read with one fix for the document's
own quirk: it declares OpenAPI 3.1 but writes 3.0's ``nullable: true``, which
means "or null".
"""

from __future__ import annotations

import base64
import functools
import json
import struct
import threading
from pathlib import Path

import jsonschema
import pytest

SCHEMAS_FILE = Path(__file__).parent / "endpoint" / "api" / "openai_schemas.json"
CHAT = "/v1/chat/completions"


def with_nullable_as_null(node: object) -> object:
    if isinstance(node, list):
        return [with_nullable_as_null(v) for v in node]
    if not isinstance(node, dict):
        return node
    rest = {k: with_nullable_as_null(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [rest, {"type": "null"}]}
    return rest


@functools.cache
def spec_components() -> dict:
    return with_nullable_as_null(json.loads(SCHEMAS_FILE.read_text())["components"])


@functools.cache
def validator(schema: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"components": spec_components(), "$ref": f"#/components/schemas/{schema}"})


def spec_error(body: object, schema: str) -> str | None:
    """Why ``body`` is not a valid ``schema`` (the most relevant error), or None."""
    error = jsonschema.exceptions.best_match(validator(schema).iter_errors(body))
    if error is None:
        return None
    return f"{error.message} (at {error.json_path})"


MEDIA_JSON = {
    "/v1/embeddings": "CreateEmbeddingResponse",
    "/v1/images/generations": "ImagesResponse",
    "/v1/audio/transcriptions": "CreateTranscriptionResponseJson",
}


def schema_for_json(method: str, path: str, status: int) -> str | None:
    if status >= 400:
        return "ErrorResponse"
    if status != 200:
        return None
    if method == "POST" and path == CHAT:
        return "CreateChatCompletionResponse"
    if method == "GET" and path == "/v1/models":
        return "ListModelsResponse"
    if method == "GET" and path.startswith("/v1/models/"):
        return "Model"
    if method == "POST" and path in MEDIA_JSON:
        return MEDIA_JSON[path]
    if (method, path) == ("POST", "/v1/audio/speech") or (method == "GET" and path.startswith("/v1/media/")):
        return None  # audio or image bytes (OpenAI's speech answer is binary; image URLs are not its API)
    return "a documented /v1 route"  # a 200 anywhere else under /v1 is not OpenAI's


class Violations:
    """What the check found, shared by the test's thread and the live server's."""

    def __init__(self) -> None:
        self._found: list[str] = []
        self._lock = threading.Lock()

    def add(self, what: str) -> None:
        with self._lock:
            self._found.append(what)

    def take(self) -> list[str]:
        with self._lock:
            found, self._found = self._found, []
        return found


VIOLATIONS = Violations()


class CheckedAnswer:
    """One /v1 answer as it is sent: its status, its type, its body so far."""

    def __init__(self, method: str, path: str) -> None:
        self.where = f"{method} {path}"
        self.method, self.path = method, path
        self.status = 0
        self.content_type = ""
        self.body = bytearray()
        self.events_done = False  # a stream's ``data: [DONE]`` was sent

    def start(self, message: dict) -> None:
        self.status = message["status"]
        for name, value in message.get("headers", ()):
            if name.lower() == b"content-type":
                self.content_type = value.decode("latin-1").lower()

    @property
    def is_stream(self) -> bool:
        return self.content_type.startswith("text/event-stream")

    def violation(self, schema: str, why: str) -> None:
        VIOLATIONS.add(f"{self.where} -> {self.status}: not OpenAI's {schema}: {why}")

    def chunk(self, data: bytes, more: bool) -> None:
        self.body += data
        if self.is_stream:
            self.check_complete_events(final=not more)
        elif not more:
            self.check_json()

    def check_json(self) -> None:
        schema = schema_for_json(self.method, self.path, self.status)
        if schema is None:
            return
        if self.path == "/v1/audio/transcriptions" and self.content_type.startswith("text/plain"):
            return  # response_format text: the words, as OpenAI sends them
        if not self.content_type.startswith("application/json"):
            self.violation(schema, f"content-type {self.content_type!r}, not JSON")
            return
        try:
            body = json.loads(self.body)
        except ValueError as exc:
            self.violation(schema, f"not JSON: {exc}")
            return
        if schema not in spec_components()["schemas"]:
            self.violation(schema, f"no such route in OpenAI's API, yet answered {self.status}")
            return
        if schema == "CreateEmbeddingResponse":
            body = self.decoded_embeddings(body)
        why = spec_error(body, schema)
        if why:
            self.violation(schema, why)

    def decoded_embeddings(self, body: object) -> object:
        """OpenAI answers ``encoding_format: base64`` (the SDK's default) with
        each vector as base64 float32s, which its document's Embedding schema
        leaves out: such a vector must decode, and is checked decoded."""
        for item in body.get("data", []) if isinstance(body, dict) else []:
            vector = item.get("embedding") if isinstance(item, dict) else None
            if isinstance(vector, str):
                try:
                    raw = base64.b64decode(vector, validate=True)
                    item["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw)) if len(raw) % 4 == 0 else vector
                except ValueError:
                    pass  # left as the string, which the schema refuses
        return body

    def check_complete_events(self, final: bool) -> None:
        *events, rest = bytes(self.body).split(b"\n\n")
        self.body = bytearray(rest)
        for event in events:
            self.check_event(event)
        if final and (rest.strip() or not self.events_done):
            self.violation("CreateChatCompletionStreamResponse", "the stream did not end with data: [DONE]")

    def check_event(self, event: bytes) -> None:
        data = b"\n".join(line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:"))
        if self.events_done:
            self.violation("CreateChatCompletionStreamResponse", f"an event after data: [DONE]: {event[:200]!r}")
            return
        if data == b"[DONE]":
            self.events_done = True
            return
        try:
            body = json.loads(data)
        except ValueError:
            self.violation("CreateChatCompletionStreamResponse", f"an event that is not JSON: {event[:200]!r}")
            return
        schema = "ErrorResponse" if isinstance(body, dict) and "error" in body else "CreateChatCompletionStreamResponse"
        why = spec_error(body, schema)
        if why:
            self.violation(schema, f"{why} in event {data[:300]!r}")


class SpecCheckedASGI:
    """Wraps an ASGI application: checks the /v1 answers it sends."""

    def __init__(self, app) -> None:
        self.app = app

    def __getattr__(self, name: str):
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send) -> None:
        method = scope.get("method", "")
        if scope["type"] != "http" or not scope["path"].startswith("/v1/") or method in ("OPTIONS", "HEAD"):
            await self.app(scope, receive, send)
            return
        answer = CheckedAnswer(method, scope["path"])

        async def checked_send(message) -> None:
            if message["type"] == "http.response.start":
                answer.start(message)
            elif message["type"] == "http.response.body":
                answer.chunk(message.get("body", b""), message.get("more_body", False))
            await send(message)

        await self.app(scope, receive, checked_send)


def pytest_configure(config) -> None:
    import endpoint.asgi

    if not isinstance(endpoint.asgi.application, SpecCheckedASGI):
        endpoint.asgi.application = SpecCheckedASGI(endpoint.asgi.application)


def fail_on_violations(when: str) -> None:
    found = VIOLATIONS.take()
    if found:
        pytest.fail(f"/v1 answered what OpenAI's spec does not allow ({when}):\n" + "\n".join(found), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    VIOLATIONS.take()  # what a previous test's server thread sent late is not this test's
    result = yield
    fail_on_violations("during setup")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    fail_on_violations("during the test")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    fail_on_violations("during teardown")
    return result


@pytest.fixture
def spec_violations() -> Violations:
    """For tests of the check itself: take what it found, so it fails nothing."""
    return VIOLATIONS
