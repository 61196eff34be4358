"""PostgreSQL dropping the server's connections under load loses nothing:
clients get answers or JSON 503s (never an HTML 500), every answer is
logged and charged, and no credit is charged for an answer not delivered."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from django.utils import timezone

from endpoint.core.config import do_set_config
from keys.credits import audit_credits, open_holds
from keys.models import ApiKey
from keys.services import do_create_key
from logs.models import Request
from logs.services import release_abandoned_calls
from tests.servers import ServerProcess, database_env, end_backends, own_backend

CALLS, CONCURRENCY = 240, 8
KILL_EVERY = 0.7  # seconds


def test_connections_killed_under_load_lose_nothing(network, tmp_path):
    do_set_config("cost_per_answer", "1")
    new = do_create_key(name="faults", credits=100_000)
    own = own_backend()
    env = {**database_env(), "STATIC_ROOT": str(tmp_path / "static"), "HOLD_GRACE_SECONDS": "0"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    server = ServerProcess(env, tmp_path / "server.log").start()
    base = server.base
    stop, killed = threading.Event(), []
    injector = threading.Thread(target=end_backends, args=(stop, KILL_EVERY, own, killed))

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
        server.kill(signal.SIGTERM)

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
