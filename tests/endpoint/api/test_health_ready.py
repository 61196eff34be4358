"""/health/ready names what is wrong, with 503, and says ok when all is well."""

from __future__ import annotations

import os

import httpx
import pytest

from endpoint.core.config import do_set_config
from endpoint.core.db import run_db
from endpoint.core.models import Neuron
from endpoint.network.metagraph import forget_directory
from tests.servers import free_port, start_server, stop

pytestmark = pytest.mark.django_db(transaction=True)


async def test_ready_when_all_is_well(api, network):
    r = await api.get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert set(body["checks"]) == {"database", "cache", "metagraph", "hotkey", "rate_limiter"}
    assert "8 serving" in body["checks"]["metagraph"]["detail"]


async def test_not_ready_without_metagraph_or_hotkey(api, network):
    await run_db(lambda: Neuron.objects.all().delete())
    await run_db(do_set_config, "hotkey_mnemonic", "")
    forget_directory()
    r = await api.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["failing"] == ["metagraph", "hotkey"]
    assert "never synced" in r.json()["checks"]["metagraph"]["detail"]


def test_not_ready_when_the_database_is_unreachable(postgres):
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"
    proc, base = start_server({**os.environ, "DATABASE_URL": dead, "LOG_LEVEL": "CRITICAL"})
    try:
        r = httpx.get(base + "/health/ready", timeout=10)
    finally:
        stop(proc)
    assert r.status_code == 503
    assert "database" in r.json()["failing"]
    assert r.json()["checks"]["database"]["ok"] is False
