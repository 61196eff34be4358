"""PostgreSQL dropping the server's connections under load loses nothing:
clients get answers or JSON 503s (never an HTML 500), every answer is
logged and charged, and no credit is charged for an answer not delivered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from endpoint.core.config import do_set_config
from keys.credits import audit_credits, open_holds
from keys.models import ApiKey
from keys.services import do_create_key
from logs.models import Request
from logs.services import release_abandoned_calls
from tests.servers import ROOT, database_env, free_port

CALLS, CONCURRENCY = 240, 8
KILL_EVERY = 0.7  # seconds


def serve(env: dict, tmp) -> tuple[subprocess.Popen, str]:
    port = free_port()
    out = (tmp / "server.out").open("w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "start", "--workers", "2", "--port", str(port)],
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
                pytest.fail("manage.py start did not serve: " + (tmp / "server.out").read_text())
            time.sleep(0.2)


def kill_server_connections(stop: threading.Event, spare: int, killed: list[int]) -> None:
    """Every KILL_EVERY seconds, end every backend of the test database but this test's own."""
    db = connection.settings_dict
    dsn = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        while not stop.wait(KILL_EVERY):
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), %s)",
                [spare],
            ).fetchall()
            killed.append(len(rows))


def test_connections_killed_under_load_lose_nothing(network, tmp_path):
    do_set_config("cost_per_answer", "1")
    new = do_create_key(name="faults", credits=100_000)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own,) = cursor.fetchone()
    env = {**database_env(), "STATIC_ROOT": str(tmp_path / "static"), "HOLD_GRACE_SECONDS": "0"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    proc, base = serve(env, tmp_path)
    stop, killed = threading.Event(), []
    injector = threading.Thread(target=kill_server_connections, args=(stop, own, killed))

    def call(i: int) -> tuple[int, str, bool]:
        """(status, content type, whether a whole answer was delivered)."""
        stream = i % 3 == 0
        body = {"model": "auto", "messages": [{"role": "user", "content": f"hi {i}"}], "stream": stream}
        headers = {"Authorization": f"Bearer {new.raw}"}
        with httpx.stream("POST", base + "/v1/chat/completions", json=body, headers=headers, timeout=30) as reply:
            text = reply.read().decode()
        # A stream the database could not record ends early, with an error event, uncharged.
        whole = not stream or ("data: [DONE]" in text and 'data: {"error"' not in text)
        return reply.status_code, reply.headers.get("content-type", ""), reply.status_code == 200 and whole

    try:
        injector.start()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            results = list(pool.map(call, range(CALLS)))
    finally:
        stop.set()
        injector.join()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)

    assert sum(killed) > 0, "the injector never found a connection to end"
    statuses = [status for status, _, _ in results]
    assert set(statuses) <= {200, 503}, statuses
    assert all(kind.startswith("application/json") for status, kind, _ in results if status == 503)
    answered = sum(1 for _, _, whole in results if whole)
    assert answered > CALLS // 2

    # The sweeper, once the holds of calls that failed after holding are past their deadline.
    release_abandoned_calls(now=timezone.now() + timedelta(minutes=10))
    assert open_holds() == (0, 0) and audit_credits() == []
    key = ApiKey.objects.get(pk=new.key.pk)
    charged = Request.objects.filter(key_id=key.pk, status=200, credits_charged__gt=0)
    # Every delivered answer is logged and charged once; nothing else is charged.
    assert charged.count() == answered
    assert 100_000 - key.credits == answered == sum(charged.values_list("credits_charged", flat=True))
