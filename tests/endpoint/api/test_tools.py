"""Tool calls and refusals through /v1/chat/completions, as the official
`openai` package and LangChain see them: a miner answering with a tool call
or a refusal (no text) has answered, plain or streamed."""

from __future__ import annotations

import json

import pytest

from keys.models import ApiKey
from logs.models import MinerResponse, Request

from .test_openai import client

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
ASK = [{"role": "user", "content": "What's the weather in Paris?"}]


def credits_of(key) -> int:
    return ApiKey.objects.get(pk=key.key.pk).credits


def test_a_tool_call_comes_back_and_is_charged_as_an_answer(live_server_url, key, network):
    completion = client(live_server_url, key.raw).chat.completions.create(model="uid:2", messages=ASK, tools=[WEATHER])
    (choice,) = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None and choice.message.refusal is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "example", "unit": "celsius"}
    assert "refusal" in completion.to_dict()["choices"][0]["message"]  # null, but there, as the spec requires
    assert credits_of(key) == 999
    entry = Request.objects.get(route="/v1/chat/completions")
    assert entry.status == 200 and entry.credits_charged == 1
    logged = MinerResponse.objects.get(request=entry)
    assert logged.is_success and json.loads(logged.response)[0]["function"]["name"] == "get_weather"


def test_tool_fields_reach_the_miner_as_given(live_server_url, key, network):
    client(live_server_url, key.raw).chat.completions.create(
        model="uid:1",
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
    )
    (seen,) = network.miners[1].seen
    assert seen.body["tools"] == [WEATHER]
    assert seen.body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert seen.body["parallel_tool_calls"] is False
    assert seen.body["response_format"] == {"type": "json_object"}


def test_a_streamed_tool_call_arrives_in_fragments(live_server_url, key, network):
    chunks = list(
        client(live_server_url, key.raw).chat.completions.create(
            model="uid:3", messages=ASK, tools=[WEATHER], stream=True
        )
    )
    pieces = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert len(pieces) == 2  # the arguments come in two fragments, relayed as they came
    assert pieces[0].id and pieces[0].function.name == "get_weather"
    arguments = "".join(p.function.arguments or "" for p in pieces)
    assert json.loads(arguments) == {"city": "example", "unit": "celsius"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert chunks[0].to_dict()["bittensor"]["uid"] == 3
    assert credits_of(key) == 999
    logged = MinerResponse.objects.get(request__route="/v1/chat/completions")
    assert logged.is_success
    assert json.loads(json.loads(logged.response)[0]["function"]["arguments"]) == {"city": "example", "unit": "celsius"}


def test_the_stream_helper_puts_the_tool_call_back_together(live_server_url, key, network):
    api = client(live_server_url, key.raw)
    with api.chat.completions.stream(model="uid:4", messages=ASK, tools=[WEATHER]) as stream:
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"] == "example"
    assert final.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("stream", [False, True])
def test_an_agent_loop_ends_in_a_text_answer(live_server_url, key, network, stream):
    api = client(live_server_url, key.raw)
    messages = list(ASK)
    first = api.chat.completions.create(model="uid:5", messages=messages, tools=[WEATHER])
    message = first.choices[0].message
    (call,) = message.tool_calls
    messages.append(message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 degrees"})
    if stream:
        chunks = list(api.chat.completions.create(model="uid:5", messages=messages, tools=[WEATHER], stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = chunks[-1].choices[0].finish_reason
    else:
        answer = api.chat.completions.create(model="uid:5", messages=messages, tools=[WEATHER])
        text, finish = answer.choices[0].message.content, answer.choices[0].finish_reason
    assert text == "Miner 5 read the tool result: Sunny, 21 degrees"
    assert finish == "stop"
    seen = network.miners[5].seen[-1].body["messages"]
    assert seen[1]["tool_calls"][0]["id"] == call.id and seen[2]["tool_call_id"] == call.id
    assert credits_of(key) == 998  # two answers


def test_tool_choice_none_answers_in_text(live_server_url, key, network):
    completion = client(live_server_url, key.raw).chat.completions.create(
        model="uid:0", messages=ASK, tools=[WEATHER], tool_choice="none"
    )
    assert completion.choices[0].message.content == "Miner 0 heard: What's the weather in Paris?"
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"


def test_a_refusal_is_an_answer(live_server_url, key, network):
    network.set_behaviour(6, mode="refuse")
    api = client(live_server_url, key.raw)
    completion = api.chat.completions.create(model="uid:6", messages=ASK)
    message = completion.choices[0].message
    assert message.refusal == "Miner 6 will not help with that." and message.content is None
    assert completion.choices[0].finish_reason == "stop"
    chunks = list(api.chat.completions.create(model="uid:6", messages=ASK, stream=True))
    assert "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices) == message.refusal
    assert credits_of(key) == 998
    logged = MinerResponse.objects.filter(request__route="/v1/chat/completions")
    assert [m.response for m in logged] == [message.refusal] * 2 and all(m.is_success for m in logged)


def test_a_plain_answer_has_a_null_refusal(live_server_url, key, network):
    completion = client(live_server_url, key.raw).chat.completions.create(model="uid:7", messages=ASK)
    assert completion.to_dict()["choices"][0]["message"]["refusal"] is None


def test_a_refusal_beats_a_slower_text_in_a_stream_race(live_server_url, key, network):
    network.set_behaviour(0, mode="refuse")
    network.set_behaviour(1, latency=1.0)
    chunks = list(client(live_server_url, key.raw).chat.completions.create(model="uids:0,1", messages=ASK, stream=True))
    assert chunks[0].to_dict()["bittensor"]["uid"] == 0
    assert any(c.choices and c.choices[0].delta.refusal for c in chunks)


def test_langchain_bind_tools_gets_tool_calls(live_server_url, key, network):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=live_server_url + "/v1", api_key=key.raw, model="uid:6", max_retries=0, timeout=20)
    with_tools = llm.bind_tools([WEATHER])
    reply = with_tools.invoke("What's the weather in Paris?")
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather" and call["args"] == {"city": "example", "unit": "celsius"}
    streamed = None
    for chunk in with_tools.stream("What's the weather in Paris?"):
        streamed = chunk if streamed is None else streamed + chunk
    assert [c["args"] for c in streamed.tool_calls] == [{"city": "example", "unit": "celsius"}]
    history = [HumanMessage("What's the weather in Paris?"), reply, ToolMessage("Rainy", tool_call_id=call["id"])]
    assert with_tools.invoke(history).content == "Miner 6 read the tool result: Rainy"


def test_the_log_puts_interleaved_tool_call_fragments_back_together():
    from endpoint.network.protocol import StreamedAnswer

    said = StreamedAnswer()
    for delta in [
        {"role": "assistant", "content": "Let me look."},
        {"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x"'}}]},
        {"tool_calls": [{"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]},
    ]:
        said.add({"choices": [{"index": 0, "delta": delta}]})
    text, calls = said.text.split("\n")
    assert text == "Let me look."
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in json.loads(calls)] == [
        ("a", "f", {"x": 1}),
        ("b", "g", {}),
    ]
