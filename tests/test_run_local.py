"""`make run` (bin/run-local) as an operator meets it: the web server, the
local subnet and Celery (worker + beat) start together and Ctrl-C stops them
all; a busy port is refused before anything changes; the services chosen
are remembered in .env so that `manage.py` afterwards uses the same ones."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from bittensor.sp_core import Keypair

from endpoint.core.config import do_set_config
from tests.commands import BASE_DIR, database_url, manage_py
from tests.servers import free_port

RUN_LOCAL = BASE_DIR / "bin" / "run-local"
WRITE_ENV = BASE_DIR / "bin" / "write_env.py"


def run_local_env(tmp_path: Path, **chosen: str) -> dict[str, str]:
    """bin/run-local's environment as `make run` gives it, with its files in tmp_path."""
    return {
        **os.environ,
        "PY": sys.executable,
        "VAR": str(tmp_path / "var"),
        "ENV_FILE": str(tmp_path / ".env"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "MINERS": "3",
        "RESET": "",
        **chosen,
    }


def group_members(pgid: int) -> list[str]:
    """The command lines of the living processes in process group ``pgid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # [0] state, [2] pgid
            found.append(cmdline)
    return found


def listening_socket() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock, sock.getsockname()[1]


@pytest.mark.parametrize("busy", ["PORT", "MINER_PORT"])
def test_a_busy_port_is_refused_before_anything_changes(tmp_path, busy):
    sock, port = listening_socket()
    (tmp_path / "var").mkdir()
    demo = tmp_path / "var" / "demo.json"
    demo.write_text('{"kept": true}')
    database = tmp_path / "db.sqlite3"
    ports = {"PORT": str(free_port()), "MINER_PORT": str(free_port()), busy: str(port)}
    if busy == "PORT":
        ports["MINER_PORT"] = "0"
    env = run_local_env(tmp_path, DATABASE_URL=f"sqlite:///{database}", REDIS_URL="", RESET="1", **ports)
    with sock:
        done = subprocess.run(["bash", RUN_LOCAL], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"port {port}" in done.stderr and f"make run {busy}=" in done.stderr
    assert "address already in use" not in done.stderr.lower()
    assert not done.stdout  # no demo key printed
    assert demo.read_text() == '{"kept": true}'  # RESET=1 did not replace the demo key
    assert not database.exists()  # not migrated
    assert not (tmp_path / ".env").exists()


def test_ctrl_c_stops_the_server_the_subnet_and_celery(postgres, redis_url, tmp_path):
    port = free_port()
    env = run_local_env(tmp_path, DATABASE_URL=database_url(), REDIS_URL=redis_url, PORT=str(port), MINER_PORT="0")
    proc = subprocess.Popen(
        ["bash", RUN_LOCAL], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, as a terminal gives `make run`
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert proc.poll() is None, proc.stdout.read()
        for _ in range(100):  # the worker comes up beside the server
            running = group_members(proc.pid)
            if any("celery" in cmd and "worker" in cmd and " -B " in cmd for cmd in running):
                break
            time.sleep(0.1)
        assert any("manage.py localnet" in cmd for cmd in running), running
        assert any("manage.py start" in cmd for cmd in running), running
        assert any("celery" in cmd and "-B" in cmd for cmd in running), running

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        deadline = time.monotonic() + 15
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert group_members(proc.pid) == []
        output = proc.stdout.read()
        assert "Demo API key" in output and "celery@" in output and f":{port}" in output
    finally:
        if group_members(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    remembered = (tmp_path / ".env").read_text()
    assert f"DATABASE_URL={database_url()}" in remembered
    assert f"REDIS_URL={redis_url}" in remembered and "SECRET_KEY=" in remembered


def test_without_redis_it_says_periodic_tasks_do_not_run_and_sigterm_stops_all(tmp_path):
    env = run_local_env(
        tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", REDIS_URL="", PORT=str(free_port()),
        MINER_PORT="0",
    )  # fmt: skip
    proc = subprocess.Popen(
        ["bash", RUN_LOCAL], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        seen = ""
        for line in proc.stdout:
            seen += line
            if "periodic tasks" in line:
                break
        assert "No Redis (REDIS_URL), so no Celery: periodic tasks" in seen, seen
        proc.send_signal(signal.SIGTERM)  # `kill <pid>`: to the script alone, which stops the rest
        assert proc.wait(timeout=15) != 0
        deadline = time.monotonic() + 15
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert group_members(proc.pid) == []
    finally:
        if group_members(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


def write_env(path: Path, **environment: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    return subprocess.run(
        [sys.executable, WRITE_ENV, path], env={**env, **environment}, capture_output=True, text=True, timeout=30
    )


def test_env_file_gets_the_choices_and_a_secret_key_once(tmp_path):
    path = tmp_path / ".env"
    first = write_env(path, DATABASE_URL="postgres://db/one", REDIS_URL="redis://r/1")
    assert first.returncode == 0, first.stderr
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    assert values["DATABASE_URL"] == "postgres://db/one" and values["REDIS_URL"] == "redis://r/1"
    assert len(values["SECRET_KEY"]) >= 50
    # The public development key may only read secrets stored before .env existed.
    assert values["SECRETS_ENCRYPTION_KEY_FALLBACKS"] == "dev-insecure-change-me-validator-endpoint"
    assert "SECRET_KEY_FALLBACKS" not in values
    assert path.stat().st_mode & 0o777 == 0o600
    assert "export DATABASE_URL=postgres://db/one" in first.stdout

    again = write_env(path, DATABASE_URL="postgres://db/one", REDIS_URL="redis://r/1")
    assert path.read_text().count("SECRET_KEY=") == 1
    assert f"SECRET_KEY={values['SECRET_KEY']}" in path.read_text()
    assert f"export SECRET_KEY={values['SECRET_KEY']}" in again.stdout


def test_env_file_values_are_kept(tmp_path):
    path = tmp_path / ".env"
    path.write_text("SECRET_KEY=mine\nDATABASE_URL=postgres://db/kept\nOTHER=x")
    done = write_env(path, DATABASE_URL="postgres://db/explicit", REDIS_URL="redis://r/2")
    assert done.returncode == 0, done.stderr
    text = path.read_text()
    assert text.startswith("SECRET_KEY=mine\nDATABASE_URL=postgres://db/kept\nOTHER=x\n")
    assert "REDIS_URL=redis://r/2" in text and text.count("SECRET_KEY=") == 1
    assert "FALLBACKS" not in text  # only beside a key it made
    assert "export DATABASE_URL=postgres://db/explicit" in done.stdout  # the environment wins for this run
    assert "DATABASE_URL" in done.stderr and "db/kept" not in done.stderr  # said, without the value


def test_env_file_is_not_committed():
    assert ".env" in (BASE_DIR / ".gitignore").read_text().splitlines()


def test_manage_py_afterwards_uses_what_make_run_chose(postgres, tmp_path):
    created = manage_py("key", "create", "-n", "after-make-run")
    assert created.returncode == 0, created.stderr
    # Stored by a run before .env existed, with the development SECRET_KEY.
    do_set_config("hotkey_mnemonic", Keypair.generate_mnemonic(12))
    path = tmp_path / ".env"
    assert write_env(path, DATABASE_URL=database_url()).returncode == 0
    secret = next(line for line in path.read_text().splitlines() if line.startswith("SECRET_KEY="))

    # As a shell after `make run`: no DATABASE_URL, not under pytest.
    shell = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PYTEST_VERSION")}
    code = "from django.conf import settings; print('SECRET_KEY=' + settings.SECRET_KEY)"
    checks = ((["key", "list"], "after-make-run"), (["shell", "-c", code], secret), (["config", "get"], "hotkey"))
    for args, expected in checks:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=BASE_DIR, env={**shell, "ENV_FILE": str(path)},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout and "unreadable" not in done.stdout

    # The test suite (PYTEST_VERSION set) never reads a developer's .env.
    under_pytest = {**shell, "ENV_FILE": str(path), "PYTEST_VERSION": "x"}
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=under_pytest,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert secret not in done.stdout


def test_make_manage_runs_a_command_on_what_make_run_chose(postgres, tmp_path):
    assert manage_py("key", "create", "-n", "seen-by-make-manage").returncode == 0
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"DATABASE_URL={database_url()}\n")
    stamp = tmp_path / "installed"
    stamp.touch()  # the venv counts as installed: nothing to pip install
    shell = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MAKEFLAGS")}
    done = subprocess.run(
        ["make", "-s", "manage", "ARGS=key list", f"PY={sys.executable}", f"STAMP={stamp}"],
        cwd=BASE_DIR, env={**shell, "ENV_FILE": str(dotenv)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "seen-by-make-manage" in done.stdout
