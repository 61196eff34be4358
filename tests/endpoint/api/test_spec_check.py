"""The session-wide check of /v1 answers against OpenAI's schemas
(tests/openai_spec_check.py) catches what a client would trip on, in-process
and on the live server, plain and streamed."""

from __future__ import annotations

import httpx
import pytest

from endpoint.api import completions
from tests.openai_spec_check import CheckedAnswer, spec_error

from .conftest import HELLO, bearer

pytestmark = pytest.mark.django_db(transaction=True)


def only(found: list[str]) -> str:
    assert len(found) == 1, found
    return found[0]


async def test_a_completion_without_choices_is_caught(api, key, network, monkeypatch, spec_violations):
    shaped = completions.completion_json

    def without_choices(*args, **kwargs):
        return {k: v for k, v in shaped(*args, **kwargs).items() if k != "choices"}

    monkeypatch.setattr(completions, "completion_json", without_choices)
    r = await api.post("/v1/chat/completions", json={"model": "uid:0", "messages": HELLO}, headers=bearer(key))
    assert r.status_code == 200
    found = only(spec_violations.take())
    assert "POST /v1/chat/completions -> 200" in found
    assert "CreateChatCompletionResponse" in found and "'choices' is a required property" in found


def test_a_chunk_without_object_is_caught_on_the_live_server(
    live_server_url, key, network, monkeypatch, spec_violations
):
    events = completions.sse_events

    async def without_object(*args, **kwargs):
        async for event in events(*args, **kwargs):
            yield event.replace(b'"object":"chat.completion.chunk",', b"")

    monkeypatch.setattr(completions, "sse_events", without_object)
    body = {"model": "uid:1", "messages": HELLO, "stream": True}
    with httpx.stream("POST", live_server_url + "/v1/chat/completions", json=body, headers=bearer(key)) as r:
        assert r.status_code == 200 and list(r.iter_lines())[-2] == "data: [DONE]"
    found = spec_violations.take()
    assert found and all("CreateChatCompletionStreamResponse" in f for f in found)
    assert "'object' is a required property" in found[0]


async def test_an_error_without_a_message_is_caught(api, key, network, monkeypatch, spec_violations):
    from endpoint.core import errors

    shaped = errors.openai_body

    def without_message(*args, **kwargs):
        body = shaped(*args, **kwargs)
        del body["error"]["message"]
        return body

    monkeypatch.setattr(completions.ModelsView, "error_body", staticmethod(without_message))
    r = await api.get("/v1/models", headers={"Authorization": "Bearer vep_wrong"})
    assert r.status_code == 401
    found = only(spec_violations.take())
    assert "GET /v1/models -> 401" in found and "ErrorResponse" in found and "'message'" in found


def test_a_stream_is_checked_event_by_event(spec_violations):
    answer = CheckedAnswer("POST", "/v1/chat/completions")
    answer.start({"status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    chunk = b'{"id":"c","object":"chat.completion.chunk","created":1,"model":"auto","choices":[]}'
    answer.chunk(b"data: " + chunk + b"\n\ndata: " + chunk[:20], more=True)  # an event split across sends
    answer.chunk(chunk[20:] + b'\n\ndata: {"error": {"message": "gone"}}\n\n', more=True)
    answer.chunk(b"data: [DONE]\n\n", more=False)
    found = only(spec_violations.take())  # OpenAI's error has a type, param and code too
    assert "not OpenAI's ErrorResponse" in found and "'type' is a required property" in found
    answer.chunk(b"data: " + chunk + b"\n\n", more=False)
    assert "after data: [DONE]" in only(spec_violations.take())


def test_nullable_reads_as_or_null():
    usage_null = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "auto", "choices": []}
    assert spec_error({**usage_null, "usage": None}, "CreateChatCompletionStreamResponse") is None
    assert spec_error({**usage_null, "usage": 3}, "CreateChatCompletionStreamResponse")
