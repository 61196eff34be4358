"""Real server processes for tests and benchmarks: uvicorn on a free port,
and a local subnet in its own process."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TEST_SECRET_KEY = "test-run-" + secrets.token_urlsafe(40)


def database_env() -> dict[str, str]:
    """The environment of this process, pointed at the test database."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    # DEBUG off as in production, but served over plain HTTP on loopback.
    plain_http = {"ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "false", "SECURE_COOKIES": "false"}
    secret = {}
    if settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY:
        # Production settings refuse the development key: the server gets a
        # key of its own, and reads what this process signed and encrypted
        # with the development one (sessions, the stored hotkey) as after a rotation.
        secret = {
            "SECRET_KEY": TEST_SECRET_KEY,
            "SECRET_KEY_FALLBACKS": settings.SECRET_KEY,
            "SECRETS_ENCRYPTION_KEY": settings.SECRETS_ENCRYPTION_KEY or settings.SECRET_KEY,
        }
    return {**plain_http, **os.environ, **secret, "DATABASE_URL": url, "DEBUG": "false", "LOG_LEVEL": "WARNING"}


def start_server(
    env: dict[str, str], *, workers: int = 1, wait_for: str = "/health/live"
) -> tuple[subprocess.Popen, str]:
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
            httpx.get(base + wait_for, timeout=2)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def start_localnet(
    n: int, tmp_path: Path, *, latency: float = 0.0, kind: str = "chat", netuid: int = 1
) -> tuple[subprocess.Popen, dict]:
    """Miners in their own process, so they don't share a GIL with the load generator."""
    out = tmp_path / f"metagraph-{kind}.json"
    cmd = [sys.executable, "manage.py", "localnet", "--miners", str(n), "--port", "0", "--out", str(out)]
    cmd += ["--kind", kind, "--netuid", str(netuid)]
    proc = subprocess.Popen([*cmd, "--latency", str(latency)], cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not out.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("localnet did not start")
        time.sleep(0.05)
    return proc, json.loads(out.read_text())


class ServerProcess:
    """`manage.py start` as an operator runs it, in its own process group:
    killed whole (SIGKILL, as a crash, or SIGTERM) and started again on the
    same port. Static files are not collected (the API needs none)."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 2) -> None:
        self.env, self.log, self.workers = env, log, workers
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        cmd = [sys.executable, "manage.py", "start", "--workers", str(self.workers), "--port", str(self.port)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*cmd, "--no-collectstatic"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.base + "/health/live", timeout=2)
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.kill()
                    raise RuntimeError("manage.py start did not serve: " + self.log.read_text()[-2000:]) from None
                time.sleep(0.2)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        if self.proc is not None:
            self.proc.wait(timeout=30)


def end_backends(stop: threading.Event, every: float, spare: int, ended: list[int]) -> None:
    """Until ``stop``, end every backend of the test database but ``spare``
    (the test's own connection) every ``every`` seconds, as an operator's
    pg_terminate_backend or a database restart would; counts in ``ended``."""
    import psycopg

    db = connection.settings_dict
    dsn = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        while not stop.wait(every):
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), %s)",
                [spare],
            ).fetchall()
            ended.append(len(rows))


def own_backend() -> int:
    """The PostgreSQL backend of this process's connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


# localstripe (a fake, stateful Stripe) on loopback: its own process, serving
# the API, its Stripe.js stand-in at /js.stripe.com/v3/ and webhooks it posts.
# Its store is kept in memory only (by default every write also goes to a pickle in /tmp).
_LOCALSTRIPE = """
import sys
from aiohttp import web
from localstripe.resources import store
from localstripe.server import app
store.dump_to_disk = lambda: None
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def start_localstripe() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", _LOCALSTRIPE, str(port)], cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/js.stripe.com/v3/", timeout=2)
            return proc, base
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("localstripe did not start")
