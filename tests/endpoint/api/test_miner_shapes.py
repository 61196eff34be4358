"""A miner's loosely shaped answer (as OpenAI-compatible servers other than
OpenAI write them) still reaches the client in OpenAI's shape; the
session-wide spec check (tests/openai_spec_check.py) holds every answer
here to OpenAI's schemas."""

from __future__ import annotations

import json

import pytest

from tests.fake_openai import FakeOpenAI

from .conftest import HELLO
from .test_openai import client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def upstream(network):
    """Miner 6 forwards every prompt to a fake OpenAI whose answers the test writes."""
    fake = FakeOpenAI().start()
    network.set_behaviour(6, upstream=fake.base_url)
    yield fake
    fake.stop()


def completion(*choices: dict, **more) -> dict:
    return {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": list(choices), **more}


def chunk(*choices: dict, **more) -> dict:
    return {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": list(choices), **more}


def test_an_unknown_finish_reason_becomes_stop(live_server_url, key, upstream):
    upstream.chat_answer = completion(
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "eos"}
    )
    answer = client(live_server_url, key.raw).chat.completions.create(model="uid:6", messages=HELLO)
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content == "hi"


def test_usage_with_null_details_is_kept_without_them(live_server_url, key, upstream):
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "prompt_tokens_details": None}
    upstream.chat_answer = completion(
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}, usage=usage
    )
    answer = client(live_server_url, key.raw).chat.completions.create(model="uid:6", messages=HELLO)
    assert answer.usage.total_tokens == 4


def test_usage_that_is_not_counts_is_counted_by_us_instead(live_server_url, key, upstream):
    upstream.chat_answer = completion(
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"},
        usage={"total_tokens": "many"},
    )
    answer = client(live_server_url, key.raw).chat.completions.create(model="uid:6", messages=HELLO)
    assert answer.choices[0].message.content == "hi"
    assert answer.usage.completion_tokens == 1 and answer.to_dict()["bittensor"]["usage"] == "counted"


def test_a_stream_of_bare_deltas_gets_index_and_finish_reason(live_server_url, key, upstream):
    upstream.chat_events = [chunk({"delta": {"content": "Par"}}), chunk({"delta": {"content": "is"}})]
    chunks = list(client(live_server_url, key.raw).chat.completions.create(model="uid:6", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris"
    assert all(c.choices[0].index == 0 for c in chunks if c.choices)


def test_a_usage_chunk_reaches_the_client(live_server_url, key, upstream):
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    upstream.chat_events = [
        chunk({"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}),
        chunk(usage=usage),
    ]
    chunks = list(
        client(live_server_url, key.raw).chat.completions.create(
            model="uid:6", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 5
    assert upstream.calls[-1]["body"]["stream_options"] == {"include_usage": True}


def test_a_tool_call_without_id_or_type_gets_them(live_server_url, key, upstream):
    call = {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    upstream.chat_answer = completion(
        {"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}, "finish_reason": "x"}
    )
    answer = client(live_server_url, key.raw).chat.completions.create(model="uid:6", messages=HELLO)
    (shaped,) = answer.choices[0].message.tool_calls
    assert (shaped.id, shaped.type, shaped.function.name) == ("call_0", "function", "get_weather")
    assert json.loads(shaped.function.arguments) == {"city": "Paris"}
    assert answer.choices[0].finish_reason == "tool_calls"


def test_streamed_tool_call_fragments_get_their_index(live_server_url, key, upstream):
    opening = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":'}}
    upstream.chat_events = [
        chunk({"index": 0, "delta": {"tool_calls": [opening]}, "finish_reason": None}),
        chunk({"index": 0, "delta": {"tool_calls": [{"function": {"arguments": '"Paris"}'}}]}, "finish_reason": None}),
        chunk({"index": 0, "delta": {}, "finish_reason": "tool_calls"}),
    ]
    api = client(live_server_url, key.raw)
    with api.chat.completions.stream(model="uid:6", messages=HELLO) as stream:
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert call.id == "call_1" and json.loads(call.function.arguments) == {"city": "Paris"}
