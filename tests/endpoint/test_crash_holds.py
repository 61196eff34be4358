"""A server killed mid-call strands no credits: the holds of its calls in
flight are released once their deadline passes (here by the sweep `start`
runs as it boots), each such call is logged once, and only answers that
were delivered are charged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from endpoint.core.config import do_set_config
from keys.credits import audit_credits, open_holds
from keys.models import ApiKey, CreditEntry
from keys.services import do_create_key
from logs.models import Request
from logs.services import ABANDONED
from tests.servers import ROOT, database_env, free_port

IN_FLIGHT_PLAIN, IN_FLIGHT_STREAMS = 4, 2
TIMEOUT = 3  # the calls' own timeout, in seconds; holds end HOLD_GRACE_SECONDS after it


def start(env: dict, tmp, name: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    out = (tmp / f"{name}.out").open("w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "start", "--workers", "2", "--port", str(port), "--no-collectstatic"],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/health/live", timeout=2)
            return proc, base
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail("manage.py start did not serve: " + (tmp / f"{name}.out").read_text())
            time.sleep(0.2)


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
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)

    proc, base = start(env, tmp_path, "first")
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
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    network.reset()

    key = ApiKey.objects.get(pk=new.key.pk)
    assert key.credits == 100 - 1 - len(callers)  # held by the dead server
    time.sleep(TIMEOUT + 1.5)  # every hold is past its deadline
    proc, base = start(env, tmp_path, "second")
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
            base + "/v1/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {new.raw}"},
            timeout=30,
        )
        assert reply.status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
