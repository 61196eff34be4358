"""What the benchmarks of test_fast.py share: the server as users run it
(`manage.py start --workers 2`), miners with their own behaviours, LiteLLM's
proxy in its own venv, a load generator in its own process, and the CPU and
memory of a server's processes read from /proc."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.servers import ROOT, free_port, stop

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
LITELLM_VENV = Path(os.environ.get("LITELLM_VENV", ROOT / "var" / "litellm-venv"))
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# --- processes ------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from the state on (the name may hold spaces)


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            parents[int(entry)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and its descendants, alive ones read from
    /proc, ended ones through their parents' cutime + cstime."""
    total = 0
    for pid in process_tree(root):
        fields = _stat(pid)
        if fields is not None:  # fields[11..14]: utime stime cutime cstime
            total += sum(int(v) for v in fields[11:15])
    return total / TICKS


def rss_mb(pid: int) -> float:
    fields = _stat(pid)
    return round(int(fields[21]) * PAGE / 2**20, 1) if fields else 0.0


def rss_parts_mb(pid: int) -> dict[str, float]:
    """The worker's resident memory by kind: its heap and other private
    memory (anon), mapped files such as libraries (file), shared memory."""
    parts = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return parts
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile", "RssShmem"):
            parts[name.removeprefix("Rss").lower()] = round(int(value.split()[0]) / 1024, 1)
    return parts


def workers(root: int) -> list[int]:
    """uvicorn's worker processes under ``root`` (not multiprocessing's resource tracker)."""
    found = []
    for pid in process_tree(root)[1:]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            found.append(pid)
    return found


def wait_http(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{url} did not answer in {seconds:g}s")


# --- the server, miners, LiteLLM ------------------------------------------------------


def start_gateway(env: dict[str, str], log: Path, workers: int = 2) -> tuple[subprocess.Popen, str]:
    """`manage.py start` as an operator runs it (static files are not part of
    what is measured, so collectstatic is skipped)."""
    port = free_port()
    cmd = [sys.executable, "manage.py", "start", "--workers", str(workers), "--port", str(port), "--no-collectstatic"]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health/live", proc)
    # Every worker up: each answers /health/live on its own accept.
    deadline = time.monotonic() + 30
    while len(workers_of(proc)) < workers and time.monotonic() < deadline:
        time.sleep(0.2)
    return proc, base


def workers_of(proc: subprocess.Popen) -> list[int]:
    return workers(proc.pid)


def start_miners(spec: list[dict], tmp: Path) -> tuple[subprocess.Popen, dict]:
    """Miners of ``spec`` (see tests/bench/miners.py) in their own process."""
    spec_file, out = tmp / "miners.json", tmp / "metagraph.json"
    spec_file.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "tests.bench.miners", str(spec_file), str(out)]
    with (tmp / "miners.log").open("ab") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not out.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("the bench miners did not start")
        time.sleep(0.05)
    return proc, json.loads(out.read_text())


class LiteLLMUnavailable(RuntimeError):
    pass


@dataclass
class LiteLLM:
    proc: subprocess.Popen
    base: str
    key: str = ""


def install_litellm(log: Path) -> Path:
    """LiteLLM's proxy in its own venv (var/ is not versioned); reused when present."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True, capture_output=True)
        with log.open("ab") as out:
            subprocess.run(
                [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
                check=True, stdout=out, stderr=subprocess.STDOUT, timeout=900,
            )  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(LITELLM_VENV, ignore_errors=True)
        raise LiteLLMUnavailable(f"pip install 'litellm[proxy]' failed ({type(exc).__name__}); see {log}") from exc
    if not exe.exists():
        raise LiteLLMUnavailable("litellm installed without its proxy command")
    return exe


def start_litellm(models: dict[str, str], tmp: Path, workers: int = 2) -> LiteLLM:
    """LiteLLM's proxy, offline (local cost map), master key only, no
    database, one ``openai/...`` model per miner base URL in ``models``."""
    exe = install_litellm(tmp / "litellm-install.log")
    key = "sk-bench-" + secrets.token_hex(16)
    lines = ["model_list:"]
    for name, api_base in models.items():
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            "      model: openai/localnet",
            f"      api_base: {api_base}",
            "      api_key: unused",
        ]
    lines += ["general_settings:", f"  master_key: {key}"]
    config = tmp / "litellm-config.yaml"
    config.write_text("\n".join(lines) + "\n")
    port = free_port()
    env = {
        "PATH": f"{LITELLM_VENV / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "NO_PROXY": "*",
    }
    cmd = [str(exe), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--num_workers", str(workers)]
    with (tmp / "litellm.log").open("ab") as out:
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/health/liveliness", proc, seconds=120)
    except RuntimeError as exc:
        stop(proc)
        raise LiteLLMUnavailable(f"the LiteLLM proxy did not start: {exc}; see {tmp / 'litellm.log'}") from exc
    return LiteLLM(proc, base, key)


# --- load ----------------------------------------------------------------------------


def load(spec: dict, server_pid: int | None = None) -> dict:
    """Run the load generator on ``spec``; with ``server_pid``, also the CPU
    its process tree spent while the measured requests ran."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.loadgen"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        proc.stdin.write(json.dumps(spec) + "\n")
        proc.stdin.flush()
        ready = json.loads(proc.stdout.readline())
        if ready.get("warmup_errors"):
            raise AssertionError(f"warm-up of {spec['url']} failed: {ready['warmup_errors']}")
        before = cpu_seconds(server_pid) if server_pid else 0.0
        proc.stdin.write("go\n")
        proc.stdin.flush()
        result = json.loads(proc.stdout.readline())
        after = cpu_seconds(server_pid) if server_pid else 0.0
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    ok = len(result["latency_ms"])
    result["ok"] = ok
    result["rps"] = round(ok / result["elapsed_s"], 1) if result["elapsed_s"] else 0.0
    if server_pid:
        result["cpu_ms_per_request"] = round((after - before) * 1000 / max(spec["n"], 1), 3)
    return result


def pct(samples: list[float], q: int) -> float | None:
    if len(samples) < 2:
        return round(samples[0], 2) if samples else None
    return round(statistics.quantiles(samples, n=100, method="inclusive")[q - 1], 2)
