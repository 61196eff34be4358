"""Benchmarks run the server as users run it: a separate uvicorn process on
the test database, with miners from a real local subnet."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(name: str, **figures) -> None:
    """One JSON line per figure, as `make bench` promises."""
    print(json.dumps({"bench": name, **figures}), flush=True)


@pytest.fixture
def server_env(transactional_db) -> dict[str, str]:
    if connection.vendor != "postgresql":
        pytest.fail("benchmarks need PostgreSQL (DATABASE_URL)")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "DEBUG": "false", "LOG_LEVEL": "WARNING"}


def start_server(env: dict[str, str], *, workers: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", "endpoint.asgi:application", "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning",
        "--workers", str(workers),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health/live", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def start_localnet(n: int, tmp_path: Path, *, latency: float = 0.0) -> tuple[subprocess.Popen, dict]:
    """Miners in their own process, so they don't share a GIL with the load generator."""
    out = tmp_path / "metagraph.json"
    cmd = [sys.executable, "manage.py", "localnet", "--miners", str(n), "--port", "0", "--out", str(out)]
    proc = subprocess.Popen([*cmd, "--latency", str(latency)], cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not out.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("localnet did not start")
        time.sleep(0.05)
    return proc, json.loads(out.read_text())


@pytest.fixture
def server(server_env):
    proc, base = start_server(server_env)
    yield base
    proc.terminate()
    proc.wait(timeout=10)
