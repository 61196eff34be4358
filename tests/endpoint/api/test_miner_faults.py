"""Slow or broken miners cost bounded time, never a hung request."""

from __future__ import annotations

import time

import pytest

from .conftest import HELLO, bearer

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 1.5


@pytest.mark.parametrize(
    ("mode", "error_fragment"),
    [
        ("hang", "did not answer within"),
        ("reset", "closed the connection"),
        ("error", "HTTP 500"),
        ("garbage", "invalid JSON"),
        ("huge", "larger than"),
        ("drip", "did not answer within"),
        ("empty", "empty content"),
    ],
)
async def test_broken_miner_costs_at_most_its_timeout(api, key, network, mode, error_fragment):
    network.set_behaviour(0, mode=mode)
    started = time.perf_counter()
    r = await api.post("/chat", json={"messages": HELLO, "uids": [0], "timeout": TIMEOUT}, headers=bearer(key))
    elapsed = time.perf_counter() - started
    assert elapsed <= TIMEOUT + 1.0
    assert r.status_code == 502
    (failed,) = r.json()["failed_responses"]
    assert failed["uid"] == 0
    assert error_fragment in failed["error"]
    # The server is still healthy: the next request to a good miner is answered.
    ok = await api.post("/chat", json={"messages": HELLO, "uids": [1]}, headers=bearer(key))
    assert ok.status_code == 200


async def test_a_broken_miner_does_not_hold_back_a_good_one(api, key, network):
    network.set_behaviour(0, mode="hang")
    started = time.perf_counter()
    r = await api.post("/chat", json={"messages": HELLO, "uids": [0, 1], "timeout": 5}, headers=bearer(key))
    assert r.status_code == 200
    assert r.json()["choices"][0]["uid"] == 1
    assert time.perf_counter() - started < 1.0  # the first success ends the call; the hung one is cancelled


async def test_refused_connection_is_a_failed_response(api, key, network):
    from endpoint.core.db import run_db
    from endpoint.network.metagraph import forget_directory, sync_metagraph

    snapshot = network.snapshot()
    snapshot["neurons"][0]["axon"] = "127.0.0.1:9"  # nothing listens on the discard port
    await run_db(sync_metagraph, snapshot=snapshot)
    forget_directory()
    r = await api.post("/chat", json={"messages": HELLO, "uids": [0], "timeout": 2}, headers=bearer(key))
    assert r.status_code == 502
    assert "could not connect" in r.json()["failed_responses"][0]["error"]


async def test_private_axons_are_refused_outside_the_local_network(api, key, network):
    from endpoint.core.db import run_db
    from endpoint.network.metagraph import forget_directory, sync_metagraph

    snapshot = network.snapshot()
    snapshot["network"] = "finney"
    await run_db(sync_metagraph, snapshot=snapshot)
    forget_directory()
    r = await api.post("/chat", json={"messages": HELLO, "uids": [0]}, headers=bearer(key))
    assert r.status_code == 502
    assert "private address" in r.json()["failed_responses"][0]["error"]
    assert not network.miners[0].seen  # no connection was made
