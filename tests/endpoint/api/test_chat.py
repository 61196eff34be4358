"""POST /chat against real localnet miners: the seed README's examples and
the contract of DESIGN §3–§4."""

from __future__ import annotations

import asyncio
import time

import pytest
from bittensor.http_auth import verify  # noqa: F401  (miners verify with it; imported to fail fast if missing)

from endpoint.core.db import run_db
from keys.models import ApiKey
from keys.services import do_create_key, do_edit_key
from logs.models import MinerResponse, Request

from .conftest import HELLO, bearer

pytestmark = pytest.mark.django_db(transaction=True)


def assert_choice_shape(choice: dict, index: int) -> None:
    assert set(choice) == {"index", "message", "uid", "responder_hotkey", "response_ms"}
    assert choice["index"] == index
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert isinstance(choice["response_ms"], (int, float))


async def test_messages_only_asks_uid_0(api, key, network):
    r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"choices", "failed_responses"}
    assert len(body["choices"]) == 1
    choice = body["choices"][0]
    assert_choice_shape(choice, 0)
    assert choice["uid"] == 0
    assert choice["responder_hotkey"] == network.miners[0].hotkey
    assert "What is 1+1?" in choice["message"]["content"] and "0" in choice["message"]["content"]
    assert body["failed_responses"] == []


async def test_uids_0_1_answer_from_one_of_them(api, key, network):
    r = await api.post("/chat", json={"messages": HELLO, "uids": [0, 1]}, headers=bearer(key))
    assert r.status_code == 200, r.text
    (choice,) = r.json()["choices"]
    assert choice["uid"] in (0, 1)
    assert choice["responder_hotkey"] == network.miners[choice["uid"]].hotkey


async def test_top_n_5_queries_the_five_highest_incentive_miners(api, key, network):
    snapshot = network.snapshot()
    ranked = sorted(snapshot["neurons"], key=lambda n: (-n["incentive"], n["uid"]))
    top5 = {n["uid"] for n in ranked[:5]}
    r = await api.post(
        "/chat", json={"messages": HELLO, "top_n": 5, "respond_on_first_success": False}, headers=bearer(key)
    )
    assert r.status_code == 200, r.text
    choices = r.json()["choices"]
    assert {c["uid"] for c in choices} == top5
    for i, c in enumerate(choices):
        assert_choice_shape(c, i)
    # Only those five miners were called.
    called = {m.uid for m in network.miners if m.seen}
    assert called == top5


async def test_top_n_with_first_success_returns_one_answer(api, key, network):
    r = await api.post("/chat", json={"messages": HELLO, "top_n": 5}, headers=bearer(key))
    assert r.status_code == 200
    assert len(r.json()["choices"]) == 1


async def test_every_miner_saw_a_valid_signature_for_its_own_hotkey(api, key, network, validator):
    r = await api.post(
        "/chat", json={"messages": HELLO, "uids": [0, 1, 2, 3], "respond_on_first_success": False}, headers=bearer(key)
    )
    assert r.status_code == 200
    for miner in network.miners[:4]:
        assert miner.seen, f"miner {miner.uid} was not called"
        for seen in miner.seen:
            assert seen.auth_error is None
            assert seen.caller_hotkey == validator.ss58_address
    assert all(not m.seen for m in network.miners[4:])


async def test_in_parallel_limits_miners_in_flight(api, key, network):
    network.set_behaviour([0, 1, 2, 3], latency=0.3)
    started = time.perf_counter()
    r = await api.post(
        "/chat",
        json={"messages": HELLO, "uids": [0, 1, 2, 3], "in_parallel": 2, "respond_on_first_success": False},
        headers=bearer(key),
    )
    elapsed = time.perf_counter() - started
    assert r.status_code == 200
    assert len(r.json()["choices"]) == 4
    assert 0.6 <= elapsed < 1.5  # two rounds of 0.3 s, not one (all at once) or four (one by one)


async def test_first_success_skips_failures_and_reports_them(api, key, network):
    network.set_behaviour(0, mode="error")
    r = await api.post("/chat", json={"messages": HELLO, "uids": [0, 1], "in_parallel": 1}, headers=bearer(key))
    assert r.status_code == 200
    body = r.json()
    assert [c["uid"] for c in body["choices"]] == [1]
    (failed,) = body["failed_responses"]
    assert set(failed) == {"index", "error", "uid", "responder_hotkey", "response_ms"}
    assert failed["uid"] == 0 and failed["index"] == 0 and "500" in failed["error"]


async def test_all_miners_failing_returns_502(api, key, network):
    network.set_behaviour([0, 1], mode="error")
    r = await api.post("/chat", json={"messages": HELLO, "uids": [0, 1]}, headers=bearer(key))
    assert r.status_code == 502
    body = r.json()
    assert body["detail"] == "All miner responses have failed."
    assert sorted(f["uid"] for f in body["failed_responses"]) == [0, 1]
    assert [f["index"] for f in body["failed_responses"]] == [0, 1]
    key_row = await run_db(ApiKey.objects.get, pk=key.key.pk)
    assert key_row.credits == 1000  # a failed request costs nothing


async def test_credits_drop_by_successful_answers_only(api, key, network):
    network.set_behaviour(2, mode="error")
    r = await api.post(
        "/chat", json={"messages": HELLO, "uids": [0, 1, 2], "respond_on_first_success": False}, headers=bearer(key)
    )
    assert r.status_code == 200
    assert len(r.json()["choices"]) == 2
    row = await run_db(ApiKey.objects.get, pk=key.key.pk)
    assert row.credits == 998
    assert row.api_request_count == 1 and row.request_count == 3


async def test_request_and_miner_responses_are_logged(api, key, network):
    network.set_behaviour(1, mode="garbage")
    r = await api.post(
        "/chat", json={"messages": HELLO, "uids": [0, 1], "respond_on_first_success": False}, headers=bearer(key)
    )
    assert r.status_code == 200
    entry = await run_db(Request.objects.get, key_id=key.key.pk)
    assert entry.route == "/chat" and entry.status == 200 and entry.credits_charged == 1
    assert entry.messages == HELLO and entry.strategy == "uids:0,1"
    rows = await run_db(lambda: list(MinerResponse.objects.filter(request=entry).order_by("uid")))
    assert [(m.uid, m.is_success) for m in rows] == [(0, True), (1, False)]
    assert "JSON" in rows[1].error
    assert rows[0].hotkey == network.miners[0].hotkey


async def test_default_strategy_comes_from_the_key(api, network):
    new = await run_db(lambda: do_create_key(name="k", credits=10, default_strategy="uids:3"))
    r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(new))
    assert r.status_code == 200
    assert r.json()["choices"][0]["uid"] == 3


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "APIKeyMissing"),
        ({"Authorization": "Bearer vep_not-a-real-key"}, "APIKeyInvalid"),
        ({"Authorization": "Basic abc"}, "APIKeyMissing"),
    ],
)
async def test_bad_keys_get_401(api, network, headers, code):
    r = await api.post("/chat", json={"messages": HELLO}, headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["code"] == code
    assert not any(m.seen for m in network.miners)
    assert await run_db(lambda: Request.objects.filter(api_error=code, status=401).count()) == 1


async def test_disabled_and_expired_keys_get_401(api, key, network):
    from datetime import timedelta

    from django.utils import timezone

    await run_db(do_edit_key, key.key, enabled=False)
    r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(key))
    assert (r.status_code, r.json()["code"]) == (401, "APIKeyDisabled")
    await run_db(do_edit_key, key.key, enabled=True, expires_at=timezone.now() - timedelta(seconds=1))
    r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(key))
    assert (r.status_code, r.json()["code"]) == (401, "APIKeyExpired")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"messages": HELLO, "top_n": 0}, "top_n"),
        ({"messages": HELLO, "uids": ["a"]}, "uids"),
        ({"messages": HELLO, "in_parallel": 0}, "in_parallel"),
        ({"messages": HELLO, "timeout": -1}, "timeout"),
    ],
)
async def test_invalid_bodies_get_400_and_change_nothing(api, key, network, body, fragment):
    r = await api.post("/chat", json=body, headers=bearer(key))
    assert r.status_code == 400
    assert r.json()["code"] == "InvalidRequestBody"
    assert fragment in r.json()["detail"]
    row = await run_db(ApiKey.objects.get, pk=key.key.pk)
    assert row.credits == 1000
    assert not any(m.seen for m in network.miners)
    assert await run_db(lambda: Request.objects.filter(status=400, api_error="InvalidRequestBody").count()) == 1


async def test_non_json_body_gets_400(api, key, network):
    r = await api.post("/chat", content=b"{not json", headers={**bearer(key), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["detail"] == "Request body is not valid JSON."


async def test_unknown_uid_gets_400(api, key, network):
    r = await api.post("/chat", json={"messages": HELLO, "uids": [0, 999]}, headers=bearer(key))
    assert r.status_code == 400
    assert r.json()["code"] == "UnknownUid" and "999" in r.json()["detail"]


async def test_unknown_endpoint_version_gets_400(api, key, network):
    r = await api.post("/chat", json={"messages": HELLO}, headers={**bearer(key), "Endpoint-Version": "2099-01-01"})
    assert r.status_code == 400 and r.json()["code"] == "UnsupportedEndpointVersion"


async def test_body_over_one_megabyte_gets_413(api, key, network):
    big = [{"role": "user", "content": "x" * (1024 * 1024 + 10)}]
    r = await api.post("/chat", json={"messages": big}, headers=bearer(key))
    assert r.status_code == 413 and r.json()["code"] == "PayloadTooLarge"
    assert not any(m.seen for m in network.miners)


async def test_not_enough_credits_gets_402(api, network):
    poor = await run_db(lambda: do_create_key(name="poor", credits=1))
    r = await api.post(
        "/chat", json={"messages": HELLO, "uids": [0, 1], "respond_on_first_success": False}, headers=bearer(poor)
    )
    assert r.status_code == 402 and r.json()["code"] == "APIKeyNotEnoughCredits"
    assert not any(m.seen for m in network.miners)


async def test_no_hotkey_gets_503(api, key, network):
    from endpoint.core.config import do_set_config

    await run_db(do_set_config, "hotkey_mnemonic", "")
    r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(key))
    assert r.status_code == 503 and r.json()["code"] == "HotkeyNotConfigured"
    assert "hotkey" in r.json()["detail"]


async def test_unsynced_metagraph_gets_503(api, key, network):
    from endpoint.core.models import Neuron
    from endpoint.network.metagraph import forget_directory

    await run_db(lambda: Neuron.objects.all().delete())
    forget_directory()
    r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(key))
    assert r.status_code == 503 and r.json()["code"] == "MetagraphNotSynced"


async def test_ten_credits_fifty_concurrent_requests_exactly_ten_succeed(api, network, postgres):
    ten = await run_db(lambda: do_create_key(name="ten", credits=10))
    responses = await asyncio.gather(
        *(api.post("/chat", json={"messages": HELLO}, headers=bearer(ten)) for _ in range(50))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 10
    assert statuses.count(402) == 40
    row = await run_db(ApiKey.objects.get, pk=ten.key.pk)
    assert row.credits == 0
