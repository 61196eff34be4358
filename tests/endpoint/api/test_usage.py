"""Token usage on /v1 as OpenAI clients see it: the miner's report passed
on, our own count when it gave none, the closing usage chunk of a stream
that asks for one (and none when it doesn't), and the tokens in the log."""

from __future__ import annotations

import httpx
import openai
import orjson
import pytest

from endpoint.core.tokens import count_text
from logs.models import Request

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Hello world"}]
ANSWER = "Miner 0 heard: Hello world"
# Words, as localnet's miners count: "Hello world" and "Miner 0 heard: Hello world".
MINERS_USAGE = {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}
# cl100k_base, checked by hand: the prompt is 3 (reply priming) + 3 (one
# message) + "user" (1) + "Hello", " world" (2); the answer is "Min", "er",
# " ", "0", " heard", ":", " Hello", " world".
COUNTED_USAGE = {"prompt_tokens": 9, "completion_tokens": 8, "total_tokens": 17}


def client(live_server_url, raw_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_server_url + "/v1", api_key=raw_key, max_retries=0, timeout=20)


def raw_stream(live_server_url, raw_key, **extra) -> list[dict | str]:
    body = {"model": "uid:0", "messages": HELLO, "stream": True, **extra}
    headers = {"Authorization": f"Bearer {raw_key}"}
    with httpx.stream("POST", live_server_url + "/v1/chat/completions", json=body, headers=headers) as r:
        assert r.status_code == 200
        data = [line.removeprefix("data: ") for line in r.iter_lines() if line]
    return [d if d == "[DONE]" else orjson.loads(d) for d in data]


def logged_tokens() -> tuple[int | None, int | None]:
    row = Request.objects.get(route="/v1/chat/completions")
    return row.prompt_tokens, row.completion_tokens


def test_the_miners_usage_is_passed_on_and_logged(live_server_url, key, network):
    completion = client(live_server_url, key.raw).chat.completions.create(model="uid:0", messages=HELLO)
    assert completion.choices[0].message.content == ANSWER
    assert completion.usage.to_dict() == MINERS_USAGE
    assert completion.to_dict()["bittensor"]["usage"] == "miner"
    assert logged_tokens() == (2, 5)


def test_usage_is_counted_when_the_miner_reports_none(live_server_url, key, network):
    network.set_behaviour(0, report_usage=False)
    completion = client(live_server_url, key.raw).chat.completions.create(model="uid:0", messages=HELLO)
    assert completion.usage.to_dict() == COUNTED_USAGE
    assert completion.to_dict()["bittensor"]["usage"] == "counted"
    assert logged_tokens() == (9, 8)


def test_counted_usage_covers_every_choice(live_server_url, key, network):
    # n answers come from n miners: the prompt is counted once, every answer's tokens added up.
    network.set_behaviour(range(8), report_usage=False)
    completion = client(live_server_url, key.raw).chat.completions.create(model="top_n:2", messages=HELLO, n=2)
    answers = [c.message.content for c in completion.choices]
    assert len(answers) == 2 and all(a.startswith("Miner ") and a.endswith(" heard: Hello world") for a in answers)
    assert completion.usage.completion_tokens == sum(count_text(a) for a in answers) == 16
    assert completion.usage.prompt_tokens == 9
    assert completion.to_dict()["bittensor"]["usage"] == "counted"


def test_sdk_stream_with_include_usage_ends_with_the_usage_chunk(live_server_url, key, network):
    stream = client(live_server_url, key.raw).chat.completions.create(
        model="uid:0", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert [c.usage is not None for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].choices == [] and chunks[-1].usage.to_dict() == MINERS_USAGE
    assert chunks[-1].to_dict()["bittensor"]["usage"] == "miner"
    (seen,) = network.miners[0].seen
    assert seen.body["stream_options"] == {"include_usage": True}
    assert logged_tokens() == (2, 5)


def test_raw_stream_usage_chunk_comes_just_before_done(live_server_url, key, network):
    events = raw_stream(live_server_url, key.raw, stream_options={"include_usage": True})
    *content, usage, done = events
    assert done == "[DONE]"
    assert usage["object"] == "chat.completion.chunk" and usage["choices"] == []
    assert usage["id"] == content[0]["id"] and usage["model"] == "uid:0" and usage["created"] == content[0]["created"]
    assert usage["usage"] == MINERS_USAGE
    assert all(event["choices"] for event in content)  # the miner's own usage chunk is not relayed as well


def test_stream_usage_is_counted_when_the_miner_sends_none(live_server_url, key, network):
    network.set_behaviour(0, report_usage=False)
    *_, usage, done = raw_stream(live_server_url, key.raw, stream_options={"include_usage": True})
    assert done == "[DONE]"
    assert usage["usage"] == COUNTED_USAGE and usage["bittensor"]["usage"] == "counted"
    assert logged_tokens() == (9, 8)


def test_stream_without_include_usage_has_no_usage_chunk_but_logs_tokens(live_server_url, key, network):
    events = raw_stream(live_server_url, key.raw)
    assert events[-1] == "[DONE]"
    assert all(event["choices"] and "usage" not in event for event in events[:-1])
    (seen,) = network.miners[0].seen
    assert "stream_options" not in seen.body
    assert logged_tokens() == (9, 8)  # the miner sent none: counted


def test_stream_options_reach_the_miner_as_given(live_server_url, key, network):
    options = {"include_usage": False, "include_obfuscation": False}
    events = raw_stream(live_server_url, key.raw, stream_options=options)
    assert all("usage" not in event for event in events[:-1])
    (seen,) = network.miners[0].seen
    assert seen.body["stream_options"] == options


def test_include_usage_must_be_a_boolean(live_server_url, key, network):
    with pytest.raises(openai.BadRequestError) as info:
        client(live_server_url, key.raw).chat.completions.create(
            model="uid:0", messages=HELLO, stream=True, stream_options={"include_usage": "yes"}
        )
    assert info.value.body["param"] == "stream_options.include_usage"
    assert network.miners[0].seen == []


def test_the_console_shows_the_tokens(live_server_url, key, network, console):
    client(live_server_url, key.raw).chat.completions.create(model="uid:0", messages=HELLO)
    row = Request.objects.get(route="/v1/chat/completions")
    page = console.get(f"/admin/logs/request/{row.pk}/change/").content.decode()
    assert "Prompt tokens" in page and "Completion tokens" in page
    assert '<div class="readonly">2</div>' in page and '<div class="readonly">5</div>' in page
    dashboard = console.get("/admin/").content.decode()
    assert '<span class="figure">2</span><span class="label">Tokens in</span>' in dashboard
    assert '<span class="figure">5</span><span class="label">Tokens out</span>' in dashboard
    assert f"<td><code>{key.key.prefix}</code></td><td>1</td><td>1</td><td>7</td></tr>" in dashboard


def test_chat_logs_the_tokens_of_every_answer_it_returns(live_server_url, key, network):
    # /chat without respond_on_first_success returns (and charges) every miner's answer.
    body = {"messages": HELLO, "uids": [0, 1], "respond_on_first_success": False}
    headers = {"Authorization": f"Bearer {key.raw}", "Endpoint-Version": "2023-05-19"}
    answer = httpx.post(live_server_url + "/chat", json=body, headers=headers, timeout=20)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["choices"]) == 2
    row = Request.objects.get(route="/chat")
    assert (row.prompt_tokens, row.completion_tokens, row.credits_charged) == (2, 10, 2)  # the prompt once, 5 + 5
