"""POST /v1/chat/completions refuses what OpenAI's CreateChatCompletionRequest
does not allow (400, ``param`` naming the field, nothing held or charged, no
miner asked) and forwards what it allows to the miner exactly as sent."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from endpoint.api.serializers import ChatCompletionRequest, parse_body
from endpoint.core.errors import InvalidBody
from keys.models import ApiKey, CreditEntry
from logs.models import Request

from .conftest import HELLO, bearer

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMAS = json.loads((Path(__file__).parent / "openai_schemas.json").read_text())["components"]["schemas"]


def request_properties(name: str = "CreateChatCompletionRequest") -> dict[str, dict]:
    """The request's properties, from its allOf parts and the schemas they $ref."""
    schema = SCHEMAS[name]
    found: dict[str, dict] = {}
    for part in schema.get("allOf", [schema]):
        if "$ref" in part:
            found.update(request_properties(part["$ref"].rsplit("/", 1)[1]))
        else:
            found.update(part.get("properties", {}))
    return found


def ranged(schema: dict) -> dict | None:
    """The (type, minimum, maximum) schema inside a property (perhaps in an anyOf with null)."""
    for option in [schema, *schema.get("anyOf", [])]:
        if "minimum" in option and "maximum" in option:
            return option
    return None


SPEC_RANGES = {
    name: (found["type"], found["minimum"], found["maximum"])
    for name, schema in request_properties().items()
    if (found := ranged(schema)) and name != "seed"  # seed's bounds are int64's, past float precision
}


def parse(**fields):
    raw = json.dumps({"model": "auto", "messages": HELLO, **fields}).encode()
    return parse_body(ChatCompletionRequest, SimpleNamespace(body=raw))


def test_the_spec_bounds_these_parameters():
    assert set(SPEC_RANGES) == {"temperature", "top_p", "n", "presence_penalty", "frequency_penalty", "top_logprobs"}


@pytest.mark.parametrize("name", sorted(SPEC_RANGES))
def test_each_range_of_the_spec_is_enforced(name):
    kind, low, high = SPEC_RANGES[name]
    step = 1 if kind == "integer" else 0.01
    # n is ours (n miners, one answer each), the others go to the miners as given.
    kept = (lambda body: body.n) if name == "n" else (lambda body: body.forwarded()[name])
    for inside in (low, high):
        assert kept(parse(**{name: inside})) == inside
    assert kept(parse(**{name: None})) is None  # the spec allows null for all of them
    for outside in (low - step, high + step):
        with pytest.raises(InvalidBody) as info:
            parse(**{name: outside})
        assert info.value.param == name


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}

REFUSED = [
    ({"temperature": 3}, "temperature"),
    ({"temperature": True}, "temperature"),
    ({"n": 0}, "n"),
    ({"n": 129}, "n"),
    ({"top_p": 1.5}, "top_p"),
    ({"presence_penalty": -2.5}, "presence_penalty"),
    ({"frequency_penalty": 2.1}, "frequency_penalty"),
    ({"top_logprobs": 21}, "top_logprobs"),
    ({"top_logprobs": -1}, "top_logprobs"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": []}, "stop"),
    ({"stop": 5}, "stop"),
    ({"seed": "42"}, "seed"),
    ({"seed": 2**63}, "seed"),
    ({"logprobs": "yes"}, "logprobs"),
    ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
    ({"parallel_tool_calls": None}, "parallel_tool_calls"),  # the one the spec does not let be null
    ({"max_completion_tokens": 1.5}, "max_completion_tokens"),
    ({"max_tokens": "7"}, "max_tokens"),
    ({"response_format": {"type": "xml"}}, "response_format"),
    ({"response_format": {"type": "json_schema"}}, "response_format"),
    ({"stream_options": 1}, "stream_options"),
    ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ({"stream": "yes"}, "stream"),
    ({"tools": {"get_weather": WEATHER}}, "tools"),
    ({"tools": [{"type": "function", "function": {}}]}, "tools"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"logit_bias": {"50256": "ban"}}, "logit_bias.50256"),
    ({"user": 7}, "user"),
]


@pytest.mark.parametrize(("fields", "param"), REFUSED, ids=[f"{p}-{i}" for i, (f, p) in enumerate(REFUSED)])
async def test_a_value_outside_the_spec_is_refused_before_anything_is_held(api, key, network, fields, param):
    before = await ApiKey.objects.aget(pk=key.key.pk)
    entries = await CreditEntry.objects.acount()
    r = await api.post("/v1/chat/completions", json={"model": "auto", "messages": HELLO, **fields}, headers=bearer(key))
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["param"], error["type"]) == ("InvalidRequestBody", param, "invalid_request_error")
    assert (await ApiKey.objects.aget(pk=key.key.pk)).credits == before.credits
    assert await CreditEntry.objects.acount() == entries  # not even a hold and its release
    logged = await Request.objects.aget()
    assert (logged.status, logged.credits_charged, logged.api_error) == (400, 0, "InvalidRequestBody")
    assert not any(miner.seen for miner in network.miners)


IN_SPEC = {
    "temperature": 0,
    "top_p": 1,
    "n": 2,
    "presence_penalty": -2,
    "frequency_penalty": 2.0,
    "top_logprobs": 20,
    "logprobs": True,
    "seed": -(2**63),
    "stop": ["a", "b", "c", "d"],
    "max_completion_tokens": 50,
    "max_tokens": 7,
    "parallel_tool_calls": True,
    "tools": [WEATHER],
    "tool_choice": "auto",
    "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
    "stream_options": {"include_usage": True},
    "logit_bias": {"50256": -100},
    "user": "user-1",
    "store": False,
    "metadata": {"team": "a"},
    "stream": None,
}


async def test_values_the_spec_allows_reach_the_miner_unchanged(api, key, network):
    body = {"model": "uid:2", "messages": HELLO, **IN_SPEC}
    r = await api.post("/v1/chat/completions", json=body, headers=bearer(key))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"  # stream: null is not a stream
    assert len(r.json()["choices"]) == 1  # n = 2 from the one miner of uid:2: one answer
    (seen,) = network.miners[2].seen
    forwarded = {k: v for k, v in IN_SPEC.items() if k not in ("stream", "n")}
    assert seen.body == {**forwarded, "messages": HELLO}
    assert json.dumps(seen.body["temperature"]) == "0"  # as sent: not turned into 0.0


async def test_a_string_stop_and_null_parameters_are_allowed(api, key, network):
    body = {"model": "uid:4", "messages": HELLO, "stop": "\n", "temperature": None, "n": None, "seed": None}
    r = await api.post("/v1/chat/completions", json=body, headers=bearer(key))
    assert r.status_code == 200, r.text
    (seen,) = network.miners[4].seen
    assert seen.body == {"stop": "\n", "temperature": None, "seed": None, "messages": HELLO}


def test_stream_options_reach_a_streaming_miner(live_server_url, key, network):
    body = {"model": "uid:3", "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", live_server_url + "/v1/chat/completions", json=body, headers=bearer(key)) as r:
        assert r.status_code == 200 and list(r.iter_lines())[-2] == "data: [DONE]"
    (seen,) = network.miners[3].seen
    assert seen.body == {"stream": True, "stream_options": {"include_usage": True}, "messages": HELLO}
