"""/v1 as real OpenAI clients see it: the official `openai` package and
LangChain's ChatOpenAI, against a live server and localnet miners."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from endpoint.core.db import run_db
from keys.models import ApiKey
from keys.services import do_create_key
from logs.models import MinerResponse, Request

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "What is 1+1?"}]


def client(live_server_url, raw_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=live_server_url + "/v1", api_key=raw_key, max_retries=0, timeout=20)


def test_create_answers_a_chat_completion_with_bittensor_details(live_server_url, key, network):
    completion = client(live_server_url, key.raw).chat.completions.create(model="auto", messages=HELLO)
    assert completion.object == "chat.completion"
    assert completion.model == "auto"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "Miner 0 heard: What is 1+1?"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    extra = completion.to_dict()["bittensor"]
    assert extra["uid"] == 0 and extra["hotkey"] == network.miners[0].hotkey
    assert extra["failed"] == [] and extra["response_ms"] >= 0


def test_model_picks_the_strategy(live_server_url, key, network):
    api = client(live_server_url, key.raw)
    assert api.chat.completions.create(model="uid:3", messages=HELLO).to_dict()["bittensor"]["uid"] == 3
    ranked = sorted(network.snapshot()["neurons"], key=lambda n: (-n["incentive"], n["uid"]))
    top = api.chat.completions.create(model="top_n:1", messages=HELLO).to_dict()["bittensor"]["uid"]
    assert top == ranked[0]["uid"]
    network.set_behaviour(4, mode="error")
    network.set_behaviour(5, latency=0.1)  # 4's failure comes in first, so it is listed, not cancelled
    both = api.chat.completions.create(model="uids:4,5", messages=HELLO).to_dict()["bittensor"]
    assert both["uid"] == 5 and [f["uid"] for f in both["failed"]] == [4]


def test_openai_parameters_reach_the_miner(live_server_url, key, network):
    client(live_server_url, key.raw).chat.completions.create(
        model="uid:2", messages=HELLO, temperature=0.2, max_tokens=7, n=1
    )
    (seen,) = network.miners[2].seen
    assert seen.body["temperature"] == 0.2 and seen.body["max_tokens"] == 7
    assert seen.body["messages"] == HELLO
    assert "model" not in seen.body  # our model names a strategy, not the miner's model


def test_stream_delivers_chunks_then_done(live_server_url, key, network):
    chunks = list(client(live_server_url, key.raw).chat.completions.create(model="uid:1", messages=HELLO, stream=True))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Miner 1 heard: What is 1+1?"
    assert chunks[0].to_dict()["bittensor"]["uid"] == 1
    assert chunks[-1].choices[0].finish_reason == "stop"
    row = ApiKey.objects.get(pk=key.key.pk)
    assert row.credits == 999  # charged once


def test_raw_stream_ends_with_done(live_server_url, key, network):
    body = {"model": "uid:1", "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST", live_server_url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key.raw}"}
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_first_miner_with_content_wins_the_stream(live_server_url, key, network):
    network.set_behaviour(0, latency=1.5)
    network.set_behaviour(1, mode="error")
    started = time.perf_counter()
    chunks = list(
        client(live_server_url, key.raw).chat.completions.create(model="uids:0,1,2", messages=HELLO, stream=True)
    )
    assert time.perf_counter() - started < 1.2  # did not wait for the slow miner
    first = chunks[0].to_dict()["bittensor"]
    assert first["uid"] == 2 and [f["uid"] for f in first["failed"]] == [1]
    entry = Request.objects.get(route="/v1/chat/completions")
    assert entry.status == 200 and entry.credits_charged == 1
    rows = {m.uid: m for m in MinerResponse.objects.filter(request=entry)}
    assert rows[2].is_success and rows[2].response == "Miner 2 heard: What is 1+1?"
    assert not rows[1].is_success and not rows[0].is_success and "cancelled" in rows[0].error


def test_client_leaving_mid_stream_cancels_the_miner_and_is_logged(live_server_url, key, network):
    network.set_behaviour(3, chunk_delay=0.5)
    body = {"model": "uid:3", "messages": [{"role": "user", "content": "one two three four five six"}], "stream": True}
    with httpx.stream(
        "POST", live_server_url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key.raw}"}
    ) as r:
        for line in r.iter_lines():
            if '"content"' in line:
                break  # got the first content, then hang up
    deadline = time.monotonic() + 5
    finished = Request.objects.filter(route="/v1/chat/completions").exclude(api_error="")
    while not finished.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    entry = Request.objects.get(route="/v1/chat/completions")
    assert entry.status == 499 and entry.api_error == "ClientClosedRequest"
    assert entry.credits_charged == 1  # its first content reached the client
    assert ApiKey.objects.get(pk=key.key.pk).credits == 999


def test_models_lists_strategies_and_uids(live_server_url, key, network):
    ids = [m.id for m in client(live_server_url, key.raw).models.list()]
    assert ids[:2] == ["auto", "best"]
    assert {"best:3", "top_n:1", "top_n:5"} <= set(ids)
    assert {f"uid:{u}" for u in range(8)} <= set(ids)


def test_bad_key_raises_authentication_error(live_server_url, network):
    with pytest.raises(openai.AuthenticationError) as info:
        client(live_server_url, "vep_wrong").chat.completions.create(model="auto", messages=HELLO)
    assert info.value.code == "APIKeyInvalid"
    assert info.value.body["type"] == "authentication_error"


def test_no_credits_raises_a_402_status_error(live_server_url, network):
    broke = do_create_key(name="broke", credits=0)
    with pytest.raises(openai.APIStatusError) as info:
        client(live_server_url, broke.raw).chat.completions.create(model="auto", messages=HELLO)
    assert info.value.status_code == 402 and info.value.code == "APIKeyNotEnoughCredits"


def test_all_miners_failing_raises_a_502(live_server_url, key, network):
    network.set_behaviour([0, 1], mode="error")
    with pytest.raises(openai.InternalServerError) as info:
        client(live_server_url, key.raw).chat.completions.create(model="uids:0,1", messages=HELLO)
    assert info.value.status_code == 502
    assert len(info.value.body["failed_responses"]) == 2
    with pytest.raises(openai.InternalServerError):
        client(live_server_url, key.raw).chat.completions.create(model="uids:0,1", messages=HELLO, stream=True)
    assert ApiKey.objects.get(pk=key.key.pk).credits == 1000


def test_unknown_model_raises_not_found(live_server_url, key, network):
    with pytest.raises(openai.NotFoundError) as info:
        client(live_server_url, key.raw).chat.completions.create(model="gpt-4o", messages=HELLO)
    assert info.value.code == "model_not_found"
    assert not any(m.seen for m in network.miners)


def test_bad_body_raises_bad_request(live_server_url, key, network):
    with pytest.raises(openai.BadRequestError) as info:
        client(live_server_url, key.raw).chat.completions.create(model="auto", messages=[])
    assert "messages" in info.value.message


def test_langchain_invoke_and_stream(live_server_url, key, network):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=live_server_url + "/v1", api_key=key.raw, model="uid:6", max_retries=0, timeout=20)
    assert llm.invoke("What is 1+1?").content == "Miner 6 heard: What is 1+1?"
    streamed = "".join(chunk.content for chunk in llm.stream("Tell me more"))
    assert streamed == "Miner 6 heard: Tell me more"


async def test_async_client_streams_too(live_server_url, key, network):
    api = openai.AsyncOpenAI(base_url=live_server_url + "/v1", api_key=key.raw, max_retries=0)
    stream = await api.chat.completions.create(model="uid:7", messages=HELLO, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Miner 7 heard: What is 1+1?"
    await api.close()
    await asyncio.sleep(0)
    assert await run_db(lambda: Request.objects.filter(status=200).count()) == 1


def test_a_charged_stream_is_on_record_before_it_ends(live_server_url, key, network):
    """Logged from its first content on: a crash mid-stream can't lose the
    record of an answer that was charged."""
    network.set_behaviour(3, chunk_delay=0.5)
    body = {"model": "uid:3", "messages": [{"role": "user", "content": "one two three four five six"}], "stream": True}
    with httpx.stream(
        "POST", live_server_url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key.raw}"}
    ) as r:
        lines = r.iter_lines()
        next(line for line in lines if '"content"' in line)
        deadline = time.monotonic() + 2
        while not Request.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        early = Request.objects.get()
        assert (early.status, early.credits_charged) == (200, 1)
        assert MinerResponse.objects.get(request=early).is_success
        rest = list(lines)
    assert [line for line in rest if line][-1] == "data: [DONE]"
    final = Request.objects.get()
    assert final.id == early.id and final.credits_charged == 1 and final.elapsed_ms > early.elapsed_ms
    answer = MinerResponse.objects.get(request=final)
    assert answer.response == "Miner 3 heard: one two three four five six"
