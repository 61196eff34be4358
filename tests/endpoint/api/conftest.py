"""Fixtures for the public API: a key and a
production server (the HTTP client speaking to the ASGI application is in
tests/conftest.py; the subnet and network fixtures are in tests/network_fixtures.py)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from keys.services import do_create_key
from tests.network_fixtures import HELLO
from tests.servers import ROOT, database_env, free_port, stop

__all__ = ["HELLO"]


@pytest.fixture
def key(network):
    return do_create_key(name="test", credits=1000)


def bearer(new_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key.raw}", "Endpoint-Version": "2023-05-19"}


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    """`manage.py start --workers 2` on the test database."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (several processes share the database)")
    tmp = tmp_path_factory.mktemp("prod-server")
    port = free_port()
    env = {
        **database_env(),
        "STATIC_ROOT": str(tmp / "static"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
        # The fuzz tests send hundreds of page calls a minute; the page limits have tests of their own.
        "CHAT_SEND_RATE": "100000/m",
        "KEY_CREATE_RATE": "100000/m",
    }
    out = (tmp / "stdout").open("w+")
    cmd = [sys.executable, "manage.py", "start", "--workers", "2", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/health/live", timeout=2)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop(proc)
                out.seek(0)
                pytest.fail("manage.py start did not serve: " + out.read())
            time.sleep(0.2)
    yield {"base": base, "port": port, "stdout": tmp / "stdout", "metrics_dir": tmp / "metrics"}
    stop(proc)
