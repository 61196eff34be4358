"""`manage.py start` refuses to serve a database that is behind its code, and
stops on Ctrl-C without a traceback, whenever it comes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from endpoint.management.workers import WorkerProcess
from tests.endpoint.test_prod_settings import run_manage
from tests.servers import ROOT, database_env, free_port


def test_start_refuses_unapplied_migrations_and_says_why(tmp_path):
    done = run_manage("start", "--port", "0", env={}, tmp_path=tmp_path)  # a fresh, empty database
    assert done.returncode == 1
    assert "migration(s) not applied" in done.stderr
    assert "run `manage.py migrate` first" in done.stderr
    assert "listening" not in done.stdout


def start_in_own_group(workers: int, tmp_path) -> subprocess.Popen:
    """`manage.py start` as a terminal runs it: Ctrl-C goes to its whole process group."""
    env = {**database_env(), "LOG_LEVEL": "INFO", "STATIC_ROOT": str(tmp_path / "static")}
    cmd = [sys.executable, "manage.py", "start", "--no-collectstatic", "--port", str(free_port())]
    return subprocess.Popen(
        [*cmd, "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until_serving(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail("manage.py start did not serve")


def interrupt(proc: subprocess.Popen) -> tuple[str, str]:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_server_cleanly(postgres, tmp_path, workers):
    proc = start_in_own_group(workers, tmp_path)
    port = int(proc.args[proc.args.index("--port") + 1])
    wait_until_serving(proc, port)
    out, err = interrupt(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "listening" in out


@pytest.mark.parametrize("after", [0.5, 1.5, 2.5])
def test_ctrl_c_while_starting_up_shows_no_traceback(postgres, tmp_path, after):
    proc = start_in_own_group(2, tmp_path)
    time.sleep(after)  # importing Django, checking migrations, or starting the workers
    out, err = interrupt(proc)
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


class ReportingWorker(WorkerProcess):
    """Writes how the spawned worker treats SIGINT where uvicorn would start serving."""

    def target(self, sockets=None) -> None:
        Path(self.config.app).write_text(signal.getsignal(signal.SIGINT).name)


def test_a_worker_is_spawned_ignoring_ctrl_c_until_uvicorn_takes_it(tmp_path):
    # A blocked mask would not do: a spawned child starts with an empty one.
    report = tmp_path / "sigint"
    before = signal.getsignal(signal.SIGINT)
    worker = ReportingWorker(uvicorn.Config(str(report)), sockets=[])
    worker.start()
    worker.process.join(60)
    assert report.read_text() == "SIG_IGN"
    assert signal.getsignal(signal.SIGINT) is before  # the supervisor's own Ctrl-C handling is back
