"""The local subnet: signed miners that answer like OpenAI, and break on
demand the ways real miners do."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from aiohttp import web
from bittensor import http_auth
from bittensor.sp_core import Keypair

from endpoint.network.localnet import LocalSubnet, Miner, MinerBehaviour, default_incentives

ROOT = Path(__file__).resolve().parents[3]
PATH = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "What is 1+1?"}]
NEURON_FIELDS = {"uid", "hotkey", "coldkey", "axon", "incentive", "trust", "stake", "validator_permit", "active"}


@pytest.fixture(scope="module")
def subnet():
    with LocalSubnet(3) as running:
        yield running


@pytest.fixture(autouse=True)
def _normal_miners(subnet):
    subnet.reset()


@pytest.fixture(scope="module")
def validator() -> Keypair:
    return Keypair.create_from_uri("//test/validator")


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        yield http


def signed(validator: Keypair, receiver: str, body: dict | bytes, path: str = PATH) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return raw, http_auth.sign(validator, method="POST", path=path, body=raw, receiver_ss58=receiver)


async def ask(client: httpx.AsyncClient, validator: Keypair, miner: Miner, **body) -> httpx.Response:
    raw, headers = signed(validator, miner.hotkey, {"messages": HELLO, **body})
    return await client.post(f"http://{miner.axon}{PATH}", content=raw, headers=headers)


def sse_events(text: str) -> list[str]:
    return [line.removeprefix("data: ") for line in text.split("\n\n") if line]


# --- answers ---------------------------------------------------------------------


async def test_a_signed_request_gets_the_deterministic_answer(subnet, validator, client):
    miner = subnet.miners[1]
    r = await ask(client, validator, miner, model="localnet-test")
    assert r.status_code == 200
    answer = r.json()
    assert answer["object"] == "chat.completion"
    assert answer["id"].startswith("chatcmpl-")
    assert answer["model"] == "localnet-test"
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Miner 1 heard: What is 1+1?"},
            "finish_reason": "stop",
        }
    ]
    assert answer["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    (seen,) = miner.seen
    assert seen.caller_hotkey == validator.ss58_address
    assert seen.auth_error is None
    assert seen.body == {"messages": HELLO, "model": "localnet-test"}
    assert not subnet.miners[0].seen


async def test_n_asks_for_several_choices(subnet, validator, client):
    r = await ask(client, validator, subnet.miners[0], n=3)
    assert [c["index"] for c in r.json()["choices"]] == [0, 1, 2]
    assert r.json()["model"] == "localnet"


async def test_a_stream_is_chunks_of_the_same_text_ending_with_done(subnet, validator, client):
    r = await ask(client, validator, subnet.miners[2], stream=True)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    words = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert words == ["Miner ", "2 ", "heard: ", "What ", "is ", "1+1?"]
    assert "".join(words) == "Miner 2 heard: What is 1+1?"


# --- authentication ------------------------------------------------------------------


async def test_an_unsigned_request_is_refused(subnet, client):
    miner = subnet.miners[0]
    r = await client.post(f"http://{miner.axon}{PATH}", json={"messages": HELLO})
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert miner.seen[-1].auth_error == "MalformedAuth"
    assert miner.seen[-1].caller_hotkey is None


async def test_a_miner_told_not_to_check_answers_unsigned_clients(subnet, client):
    # For clients that can't sign btauth/1 (LiteLLM in the benchmarks); off by default.
    miner = subnet.miners[0]
    subnet.set_behaviour(0, require_auth=False)
    r = await client.post(f"http://{miner.axon}{PATH}", json={"messages": HELLO})
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "Miner 0 heard: What is 1+1?"
    assert miner.seen[-1].auth_error is None and miner.seen[-1].caller_hotkey is None


async def test_a_request_signed_for_another_miner_is_refused(subnet, validator, client):
    raw, headers = signed(validator, subnet.miners[1].hotkey, {"messages": HELLO})
    r = await client.post(f"http://{subnet.miners[0].axon}{PATH}", content=raw, headers=headers)
    assert r.status_code == 401
    assert "different receiving hotkey" in r.json()["error"]["message"]
    assert subnet.miners[0].seen[-1].auth_error == "WrongReceiver"


async def test_a_replayed_request_is_refused(subnet, validator, client):
    miner = subnet.miners[0]
    raw, headers = signed(validator, miner.hotkey, {"messages": HELLO})
    first = await client.post(f"http://{miner.axon}{PATH}", content=raw, headers=headers)
    again = await client.post(f"http://{miner.axon}{PATH}", content=raw, headers=headers)
    assert (first.status_code, again.status_code) == (200, 401)
    assert [s.auth_error for s in miner.seen] == [None, "ReplayedRequest"]


async def test_a_tampered_body_fails_the_signature(subnet, validator, client):
    miner = subnet.miners[0]
    _, headers = signed(validator, miner.hotkey, {"messages": HELLO})
    r = await client.post(f"http://{miner.axon}{PATH}", content=orjson.dumps({"messages": []}), headers=headers)
    assert r.status_code == 401
    assert miner.seen[-1].auth_error == "BadSignature"


async def test_routes_methods_and_bodies_are_checked(subnet, validator, client):
    miner = subnet.miners[0]
    assert (await client.post(f"http://{miner.axon}/v1/completions", json={})).status_code == 404
    assert (await client.get(f"http://{miner.axon}{PATH}")).status_code == 405
    for bad in (b"not json", b"[1, 2]", b'{"prompt": "hi"}'):
        raw, headers = signed(validator, miner.hotkey, bad)
        r = await client.post(f"http://{miner.axon}{PATH}", content=raw, headers=headers)
        assert r.status_code == 400, bad
    assert miner.seen[-1].caller_hotkey == validator.ss58_address  # signed, just not a chat body


# --- faults ----------------------------------------------------------------------------


async def test_error_mode_answers_500_json(subnet, validator, client):
    subnet.set_behaviour(0, mode="error")
    r = await ask(client, validator, subnet.miners[0])
    assert r.status_code == 500
    assert r.json()["error"]["type"] == "server_error"


async def test_failure_rate_one_always_fails_streams_too(subnet, validator, client):
    subnet.set_behaviour(0, failure_rate=1.0)
    assert (await ask(client, validator, subnet.miners[0])).status_code == 500
    assert (await ask(client, validator, subnet.miners[0], stream=True)).status_code == 500


async def test_reset_mode_resets_the_connection(subnet, validator, client):
    subnet.set_behaviour(0, mode="reset")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await ask(client, validator, subnet.miners[0])


async def test_hang_mode_never_answers(subnet, validator):
    subnet.set_behaviour(0, mode="hang")
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=0.5, trust_env=False) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await ask(impatient, validator, subnet.miners[0])
    assert time.perf_counter() - started < 1.5


async def test_garbage_mode_answers_200_that_is_not_json(subnet, validator, client):
    subnet.set_behaviour(0, mode="garbage")
    r = await ask(client, validator, subnet.miners[0])
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()


async def test_huge_mode_sends_more_than_10_mb(subnet, validator, client):
    subnet.set_behaviour(0, mode="huge")
    r = await ask(client, validator, subnet.miners[0])
    assert r.status_code == 200
    assert len(r.content) > 10 * 1024 * 1024


async def test_drip_mode_sends_a_byte_a_second(subnet, validator, client):
    subnet.set_behaviour(0, mode="drip")
    miner = subnet.miners[0]
    raw, headers = signed(validator, miner.hotkey, {"messages": HELLO})
    arrivals = []
    async with client.stream("POST", f"http://{miner.axon}{PATH}", content=raw, headers=headers) as r:
        assert r.status_code == 200
        async for piece in r.aiter_raw():
            arrivals.extend([time.perf_counter()] * len(piece))
            if len(arrivals) >= 2:
                break
    assert 0.8 <= arrivals[1] - arrivals[0] <= 2.0


async def test_empty_mode_answers_empty_content(subnet, validator, client):
    subnet.set_behaviour(0, mode="empty")
    r = await ask(client, validator, subnet.miners[0])
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == ""


async def test_latency_delays_the_answer(subnet, validator, client):
    subnet.set_behaviour(0, latency=0.3)
    started = time.perf_counter()
    r = await ask(client, validator, subnet.miners[0])
    assert r.status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_jitter_never_makes_a_negative_delay():
    behaviour = MinerBehaviour(latency=0.01, jitter=0.05)
    delays = [behaviour.delay() for _ in range(500)]
    assert min(delays) >= 0.0
    assert max(delays) <= 0.06
    assert len(set(delays)) > 1


def test_unknown_modes_and_bad_rates_are_refused():
    with pytest.raises(ValueError, match="unknown miner mode"):
        MinerBehaviour(mode="sulk")
    with pytest.raises(ValueError, match="failure_rate"):
        MinerBehaviour(failure_rate=1.5)


# --- control and snapshot ------------------------------------------------------------


async def test_set_behaviour_and_reset(subnet, validator, client):
    subnet.set_behaviour([0, 2], mode="error")
    statuses = [(await ask(client, validator, m)).status_code for m in subnet.miners]
    assert statuses == [500, 200, 500]
    with pytest.raises(ValueError):
        subnet.set_behaviour([1, 2], mode="sulk")
    assert subnet.miners[1].behaviour.mode == "ok"  # a bad change alters nothing
    subnet.reset()
    assert all(not m.seen for m in subnet.miners)
    statuses = [(await ask(client, validator, m)).status_code for m in subnet.miners]
    assert statuses == [200, 200, 200]


def test_snapshot_describes_every_miner(subnet):
    snapshot = subnet.snapshot()
    assert snapshot["network"] == "local"
    assert snapshot["netuid"] == 1
    assert isinstance(snapshot["block"], int)
    neurons = snapshot["neurons"]
    assert [n["uid"] for n in neurons] == [0, 1, 2]
    for neuron, miner in zip(neurons, subnet.miners, strict=True):
        assert set(neuron) == NEURON_FIELDS
        assert neuron["hotkey"] == Keypair.create_from_uri(f"//localnet/miner/{miner.uid}").ss58_address
        assert neuron["coldkey"] == Keypair.create_from_uri(f"//localnet/coldkey/{miner.uid}").ss58_address
        assert neuron["axon"] == f"127.0.0.1:{miner.port}"
        assert neuron["active"] is True
    incentives = [n["incentive"] for n in neurons]
    assert len(set(incentives)) == 3
    assert incentives not in (sorted(incentives), sorted(incentives, reverse=True))


def test_default_incentives_are_distinct_and_unsorted_for_any_size():
    for n in range(3, 40):
        incentives = default_incentives(n)
        assert len(set(incentives)) == n
        assert incentives not in (sorted(incentives), sorted(incentives, reverse=True))


def test_given_incentives_override_the_default():
    subnet = LocalSubnet(2, incentives=[0.25, 0.75], netuid=7)
    snapshot = subnet.snapshot()
    assert [n["incentive"] for n in snapshot["neurons"]] == [0.25, 0.75]
    assert snapshot["netuid"] == 7


def test_write_snapshot_creates_the_directory(subnet, tmp_path):
    written = subnet.write_snapshot(tmp_path / "deep" / "er" / "metagraph.json")
    assert written == (tmp_path / "deep" / "er" / "metagraph.json").resolve()
    assert json.loads(written.read_text())["neurons"] == subnet.snapshot()["neurons"]
    assert [p.name for p in written.parent.iterdir()] == ["metagraph.json"]


async def test_miners_listen_on_consecutive_ports_from_base_port(validator, client):
    base = free_port_run(2)
    with LocalSubnet(2, base_port=base) as fixed:
        assert [m.port for m in fixed.miners] == [base, base + 1]
        assert (await ask(client, validator, fixed.miners[1])).status_code == 200


async def test_stop_is_quick_even_with_a_hung_request(validator):
    with LocalSubnet(1, behaviour=MinerBehaviour(mode="hang")) as hung:
        async with httpx.AsyncClient(timeout=10, trust_env=False) as patient:
            pending = asyncio.create_task(ask(patient, validator, hung.miners[0]))
            await asyncio.sleep(0.2)
            started = time.perf_counter()
            await asyncio.to_thread(hung.stop)
            assert time.perf_counter() - started < 2
            with pytest.raises(httpx.TransportError):
                await pending


# --- upstream ------------------------------------------------------------------------------

UPSTREAM_TEXT = "Paris is the capital of France."


@pytest.fixture
async def upstream():
    """A tiny OpenAI-compatible server; it records the bodies it receives."""
    received: list[dict] = []

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        received.append(body)
        if body.get("stream"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for piece in (UPSTREAM_TEXT[:6], UPSTREAM_TEXT[6:]):
                chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": piece}}]}
                await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            return response
        return web.json_response(
            {
                "id": "chatcmpl-upstream",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": UPSTREAM_TEXT}, "finish_reason": "stop"}
                ],
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/v1", received
    await runner.cleanup()


async def test_a_miner_forwards_to_its_upstream(subnet, validator, client, upstream):
    url, received = upstream
    subnet.set_behaviour(0, upstream=url)
    r = await ask(client, validator, subnet.miners[0], model="gpt-test", temperature=0.2)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == UPSTREAM_TEXT
    assert received == [{"messages": HELLO, "model": "gpt-test", "temperature": 0.2}]

    streamed = await ask(client, validator, subnet.miners[0], stream=True)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse_events(streamed.text)
    assert events[-1] == "[DONE]"
    assert "".join(json.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1]) == UPSTREAM_TEXT


async def test_upstream_model_replaces_the_model(subnet, validator, client, upstream):
    url, received = upstream
    subnet.set_behaviour(0, upstream=url, upstream_model="real-model")
    r = await ask(client, validator, subnet.miners[0], model="top_n:3")
    assert r.json()["model"] == "real-model"
    assert received[-1]["model"] == "real-model"


async def test_an_unreachable_upstream_is_a_502(subnet, validator, client):
    subnet.set_behaviour(0, upstream=f"http://127.0.0.1:{free_port_run(1)}/v1")
    r = await ask(client, validator, subnet.miners[0])
    assert r.status_code == 502
    assert r.json()["error"]["type"] == "upstream_error"


# --- the command -----------------------------------------------------------------------------------


def test_the_localnet_command_serves_until_sigterm(tmp_path, validator):
    port = free_port_run(2)
    out = tmp_path / "m.json"
    cmd = [sys.executable, "manage.py", "localnet", "--miners", "2", "--port", str(port), "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not out.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the snapshot was not written"
            time.sleep(0.05)
        snapshot = json.loads(out.read_text())
        neuron = snapshot["neurons"][1]
        assert [n["axon"] for n in snapshot["neurons"]] == [f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"]
        raw, headers = signed(validator, neuron["hotkey"], {"messages": HELLO})
        r = httpx.post(f"http://{neuron['axon']}{PATH}", content=raw, headers=headers, timeout=5, trust_env=False)
        assert r.json()["choices"][0]["message"]["content"] == "Miner 1 heard: What is 1+1?"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert f"snapshot: {out.resolve()}" in stdout
    for n in snapshot["neurons"]:
        assert f"{n['axon']:<22} {n['hotkey']}" in stdout


def free_port_run(n: int) -> int:
    """The first of n consecutive loopback ports that are free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + n - 1 > 65535:
            continue
        held = []
        try:
            for port in range(first, first + n):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no run of {n} free ports")
