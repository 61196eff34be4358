"""A server killed mid-call strands no credits: the holds of its calls in
flight are released once their deadline passes (here by the sweep `start`
runs as it boots), each such call is logged once, and only answers that
were delivered are charged."""

from __future__ import annotations

import threading
import time

import httpx

from endpoint.core.config import do_set_config
from keys.credits import audit_credits, open_holds
from keys.models import ApiKey, CreditEntry
from keys.services import do_create_key
from logs.models import Request
from logs.services import ABANDONED
from tests.servers import ServerProcess, database_env

IN_FLIGHT_PLAIN, IN_FLIGHT_STREAMS = 4, 2
TIMEOUT = 3  # the calls' own timeout, in seconds; holds end HOLD_GRACE_SECONDS after it


def fire(base: str, raw: str, stream: bool) -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    try:
        httpx.post(base + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {raw}"}, timeout=30)
    except httpx.HTTPError:
        pass  # the server is killed under it


def test_kill_9_mid_call_then_restart_releases_every_hold(network, tmp_path):
    do_set_config("miner_timeout", str(TIMEOUT))
    do_set_config("cost_per_answer", "1")
    new = do_create_key(name="crash", credits=100)
    env = {**database_env(), "STATIC_ROOT": str(tmp_path / "static"), "HOLD_GRACE_SECONDS": "1"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    server = ServerProcess(env, tmp_path / "server.log").start()
    base = server.base
    try:
        fire(base, new.raw, stream=False)  # one answer delivered before the crash: charged
        network.set_behaviour(range(8), latency=30)  # the rest hang until the crash
        callers = [
            threading.Thread(target=fire, args=(base, new.raw, i >= IN_FLIGHT_PLAIN), daemon=True)
            for i in range(IN_FLIGHT_PLAIN + IN_FLIGHT_STREAMS)
        ]
        for caller in callers:
            caller.start()
        deadline = time.monotonic() + 20
        while open_holds()[0] < len(callers):
            assert time.monotonic() < deadline, f"holds in flight: {open_holds()}"
            time.sleep(0.05)
    finally:
        server.kill()  # SIGKILL, calls in flight
    network.reset()

    key = ApiKey.objects.get(pk=new.key.pk)
    assert key.credits == 100 - 1 - len(callers)  # held by the dead server
    time.sleep(TIMEOUT + 1.5)  # every hold is past its deadline
    server.start()
    try:
        key.refresh_from_db()
        assert key.credits == 99  # what was charged for the one delivered answer, nothing more
        assert open_holds() == (0, 0) and audit_credits() == []
        requests = Request.objects.filter(key_id=key.pk)
        assert requests.count() == 1 + len(callers)  # every call logged exactly once
        abandoned = requests.filter(api_error=ABANDONED)
        assert abandoned.count() == len(callers) and {r.credits_charged for r in abandoned} == {0}
        released = CreditEntry.objects.filter(key_id=key.pk, kind="release")
        assert sorted(released.values_list("amount", flat=True)) == [1] * len(callers)
        # The restarted server serves the key as before.
        reply = httpx.post(
            server.base + "/v1/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {new.raw}"},
            timeout=30,
        )
        assert reply.status_code == 200
    finally:
        server.kill()
