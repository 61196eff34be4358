"""A miner that goes wrong after its first content ends the client's stream
cleanly — an OpenAI-style error event, then [DONE] — and is logged as that
miner's failure, not a server error. The content already delivered stays
charged. The request's timeout bounds the whole answer, and the whole
sequence of miners asked one after another."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from endpoint.core.config import do_set_config
from keys.models import ApiKey
from keys.services import do_create_key
from logs.models import MinerResponse, Request

PROMPT = [{"role": "user", "content": "one two three four five six seven"}]


@pytest.fixture
def paying(network):
    do_set_config("cost_per_answer", "1")
    return do_create_key(name="streams", credits=100)


def stream_events(base: str, raw: str) -> tuple[int, list]:
    body = {"model": "uid:3", "messages": PROMPT, "stream": True}
    headers = {"Authorization": f"Bearer {raw}"}
    events = []
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, headers=headers, timeout=30) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: "):
                data = line[6:]
                events.append(data if data == "[DONE]" else json.loads(data))
    return reply.status_code, events


def logged_when_done() -> Request:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        entry = Request.objects.filter(route="/v1/chat/completions", elapsed_ms__gt=0).first()
        if entry is not None and MinerResponse.objects.filter(request=entry, uid=3).exclude(error="").exists():
            return entry
        time.sleep(0.05)
    return Request.objects.get(route="/v1/chat/completions")


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("reset", "stream broke off"),
        ("garbage", "invalid JSON"),
        ("long_line", "stream broke off"),
    ],
)
def test_a_miner_failing_mid_stream_ends_it_with_an_error_event(live_server_url, paying, network, fault, said):
    network.set_behaviour(3, stream_fault=fault)
    status, events = stream_events(live_server_url, paying.raw)

    assert status == 200
    *chunks, error, done = events
    assert any(c["choices"][0]["delta"].get("content") for c in chunks)  # the first content reached the client
    assert done == "[DONE]"
    assert error["error"]["code"] == "MinerStreamFailed" and said in error["error"]["message"]
    entry = logged_when_done()
    assert (entry.status, entry.api_error) == (200, "")  # not a server error
    miner = MinerResponse.objects.get(request=entry, uid=3)
    assert said in miner.error and miner.response.startswith("Miner")  # what was relayed before it broke
    # The rule: content was delivered, so the answer is charged (once).
    assert entry.credits_charged == 1 and ApiKey.objects.get(pk=paying.key.pk).credits == 99


def test_the_timeout_bounds_the_whole_stream(live_server_url, paying, network):
    do_set_config("miner_timeout", "2")
    network.set_behaviour(3, stream_fault="drip", chunk_delay=0.3)  # never idle, never done
    started = time.monotonic()
    status, events = stream_events(live_server_url, paying.raw)
    took = time.monotonic() - started

    assert status == 200 and 1.8 < took < 3.5
    assert events[-2]["error"]["message"] == "miner did not finish within the timeout"
    assert events[-1] == "[DONE]"


def test_miners_asked_one_after_another_share_the_timeout(live_server_url, paying, network):
    network.set_behaviour([1, 2], latency=3)
    body = {"messages": PROMPT, "uids": [1, 2], "in_parallel": 1, "timeout": 2}
    started = time.monotonic()
    reply = httpx.post(
        live_server_url + "/chat", json=body, headers={"Authorization": f"Bearer {paying.raw}"}, timeout=30
    )
    took = time.monotonic() - started
    assert reply.status_code == 502  # neither answered in time
    assert took < 2.8  # the request's 2 s, not 2 s for each miner
