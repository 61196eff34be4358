"""An edit made in one process (here the test's, as `manage.py key edit` or
the admin would) takes effect on the next call in every worker of a server,
though each worker keeps copies of keys and config for a minute: PostgreSQL
NOTIFY tells them when the edit commits."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from endpoint.core.config import do_set_config
from keys.services import do_create_key, do_delete_key, do_edit_key
from tests.servers import ServerProcess, database_env

BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
CALLS = 24  # enough that both workers serve some


@pytest.fixture
def two_workers(network, tmp_path):
    env = {
        **database_env(),
        "STATIC_ROOT": str(tmp_path / "static"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        # Copies that outlive the test: only the notification can explain a refusal.
        "AUTH_CACHE_SECONDS": "600",
        "CONFIG_CACHE_SECONDS": "600",
    }
    server = ServerProcess(env, tmp_path / "server.log").start()
    yield server.base
    server.kill(signal.SIGTERM)


def calls(base: str, raw: str) -> list[int]:
    headers = {"Authorization": f"Bearer {raw}"}
    # A new connection per call, so the workers share them out.
    return [
        httpx.post(base + "/v1/chat/completions", json=BODY, headers=headers, timeout=30).status_code
        for _ in range(CALLS)
    ]


def soon_everywhere(base: str, raw: str) -> list[int]:
    """The statuses once the edit has had a moment to reach the workers."""
    time.sleep(0.3)
    return calls(base, raw)


def test_disable_reaches_every_worker_at_once(two_workers):
    new = do_create_key(name="edited", credits=None)
    assert set(calls(two_workers, new.raw)) == {200}  # now cached in both workers
    do_edit_key(new.key, enabled=False)
    assert set(soon_everywhere(two_workers, new.raw)) == {401}
    do_edit_key(new.key, enabled=True)
    assert set(soon_everywhere(two_workers, new.raw)) == {200}


def test_a_deleted_key_is_unknown_at_once(two_workers):
    new = do_create_key(name="deleted", credits=None)
    assert set(calls(two_workers, new.raw)) == {200}
    do_delete_key(new.key)
    statuses = soon_everywhere(two_workers, new.raw)
    assert set(statuses) == {401}


def test_unlimited_made_zero_serves_nothing_free(two_workers):
    new = do_create_key(name="was unlimited", credits=None)
    assert set(calls(two_workers, new.raw)) == {200}
    do_set_config("cost_per_answer", "1")
    do_edit_key(new.key, credits=0)
    assert set(soon_everywhere(two_workers, new.raw)) == {402}


def test_a_config_change_reaches_every_worker_at_once(two_workers):
    new = do_create_key(name="limited by config", credits=None)
    assert set(calls(two_workers, new.raw)) == {200}
    do_set_config("global_rate_limits", '[{"times": 1, "seconds": 600}]')
    do_set_config("rate_limiting_enabled", "true")
    statuses = soon_everywhere(two_workers, new.raw)
    assert statuses.count(200) <= 1 and statuses.count(429) >= CALLS - 1
