"""Rate limits counted in the real Redis: exact under concurrency, shared by
processes, honest about when to retry, and harmless when Redis goes away."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from endpoint.core import errors
from endpoint.core.config import RuntimeConfig
from endpoint.core.errors import RateLimiterUnavailable
from endpoint.core.models import EndpointConfig
from endpoint.ratelimits import RateState, check_rate_limits, close_limiter, limiter_health, rules_for

BASE_DIR = Path(__file__).resolve().parents[2]


def subject() -> str:
    # Each test counts under its own name, so counters of other tests never show.
    return f"test:{uuid.uuid4()}"


async def outcomes(calls) -> tuple[list[RateState], list[errors.RateLimitExceeded]]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    refused = [r for r in results if isinstance(r, errors.RateLimitExceeded)]
    allowed = [r for r in results if isinstance(r, RateState)]
    assert len(allowed) + len(refused) == len(results), results
    return allowed, refused


@pytest.fixture(autouse=True)
async def _close_redis_clients():
    yield
    await close_limiter()


def config(enabled: bool = True, global_rules: tuple = ((100, 60),)) -> RuntimeConfig:
    """The snapshot the gateway reads, from an unsaved row (no database)."""
    row = EndpointConfig(
        rate_limiting_enabled=enabled,
        global_rate_limits=[{"times": times, "seconds": seconds} for times, seconds in global_rules],
    )
    return RuntimeConfig.from_row(row)


# --- counting ----------------------------------------------------------------


async def test_exactly_ten_of_fifty_concurrent_requests_pass_a_10_per_minute_rule(redis_url):
    who = subject()
    allowed, refused = await outcomes(check_rate_limits(who, [(10, 60)]) for _ in range(50))

    assert len(allowed) == 10
    assert len(refused) == 40
    assert sorted(s.remaining for s in allowed) == list(range(10))
    assert all(r.code == "RateLimitExceeded" and r.status == 429 for r in refused)
    assert all(58 <= r.retry_after <= 60 for r in refused)
    headers = refused[0].headers()
    assert headers["x-ratelimit-limit-requests"] == "10"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["Retry-After"] == str(refused[0].retry_after)


async def test_every_rule_applies_at_once(redis_url):
    who = subject()
    rules = [(3, 1), (5, 60)]

    allowed, refused = await outcomes(check_rate_limits(who, rules) for _ in range(5))
    assert (len(allowed), len(refused)) == (3, 2)
    assert all(r.retry_after == 1 for r in refused)  # the 1-second rule said no

    await asyncio.sleep(1.05)
    allowed, refused = await outcomes(check_rate_limits(who, rules) for _ in range(3))
    # Only 2 more fit in the minute: the refused calls above took no slot of it.
    assert (len(allowed), len(refused)) == (2, 1)
    assert refused[0].retry_after >= 58  # now the minute rule is the one saying no
    assert refused[0].state.limit == 5


async def test_refused_requests_take_no_slot(redis_url):
    who = subject()
    assert len((await outcomes(check_rate_limits(who, [(2, 1)]) for _ in range(2)))[0]) == 2
    _, refused = await outcomes(check_rate_limits(who, [(2, 1)]) for _ in range(20))
    assert len(refused) == 20

    await asyncio.sleep(1.05)
    allowed, refused = await outcomes(check_rate_limits(who, [(2, 1)]) for _ in range(3))
    assert (len(allowed), len(refused)) == (2, 1)


async def test_retry_after_is_within_a_second_of_the_true_wait(redis_url):
    who = subject()
    await check_rate_limits(subject(), [(1, 2)])  # warm the connection, so timing is the limiter's alone
    await check_rate_limits(who, [(1, 2)])
    counted_by = time.monotonic()  # the slot was taken at the latest now
    await asyncio.sleep(0.6)

    with pytest.raises(errors.RateLimitExceeded) as refused:
        await check_rate_limits(who, [(1, 2)])
    true_wait = counted_by + 2 - time.monotonic()  # never shorter than the real wait
    assert -0.05 <= refused.value.retry_after - true_wait <= 1
    assert refused.value.headers()["Retry-After"] == str(refused.value.retry_after)

    # And the wait is real: just after it, the request passes.
    await asyncio.sleep(true_wait + 0.05)
    state = await check_rate_limits(who, [(1, 2)])
    assert state == RateState(limit=1, remaining=0, reset_seconds=2.0)


async def test_no_rules_means_no_counting(redis_url):
    assert await check_rate_limits(subject(), []) is None


async def test_without_redis_the_same_limits_hold_in_process(settings):
    settings.REDIS_URL = ""
    who = subject()
    allowed, refused = await outcomes(check_rate_limits(who, [(10, 60), (3, 1)]) for _ in range(50))
    assert (len(allowed), len(refused)) == (3, 47)
    assert all(r.retry_after == 1 for r in refused)
    assert await limiter_health() == (True, "in-process (no REDIS_URL)")


def test_two_processes_share_one_limit(redis_url):
    who = subject()
    code = (
        "import asyncio, django\n"
        "django.setup()\n"
        "from endpoint.ratelimits import RateState, check_rate_limits\n"
        "async def main():\n"
        f"    calls = [check_rate_limits({who!r}, [(10, 60)]) for _ in range(10)]\n"
        "    results = await asyncio.gather(*calls, return_exceptions=True)\n"
        "    print(sum(isinstance(r, RateState) for r in results))\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "endpoint.settings", "REDIS_URL": redis_url}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    allowed = [int(proc.communicate(timeout=60)[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert sum(allowed) == 10


# --- which rules ----------------------------------------------------------------


def test_a_keys_own_rules_replace_the_global_ones():
    cfg = config(global_rules=((100, 60), (1000, 3600)))
    assert rules_for([], cfg) == [(100, 60), (1000, 3600)]
    assert rules_for([{"times": 5, "seconds": 1}, {"times": 20, "seconds": 60}], cfg) == [(5, 1), (20, 60)]


def test_no_rules_when_rate_limiting_is_off():
    assert rules_for([{"times": 5, "seconds": 1}], config(enabled=False)) == []
    assert rules_for([], config(global_rules=())) == []


def test_malformed_key_rules_fall_back_to_the_global_ones(caplog):
    assert rules_for([{"times": "lots"}], config()) == [(100, 60)]
    assert "malformed" in caplog.text


async def test_a_keys_own_rules_are_what_is_counted(redis_url):
    who = subject()
    rules = rules_for([{"times": 2, "seconds": 60}], config(global_rules=((100, 60),)))
    allowed, refused = await outcomes(check_rate_limits(who, rules) for _ in range(5))
    assert (len(allowed), len(refused)) == (2, 3)


# --- when Redis goes away ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own, so stopping it touches nobody else."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private_redis(redis_url, settings):
    server = PrivateRedis()
    server.start()
    settings.REDIS_URL = server.url
    yield server
    server.stop()


async def test_redis_down_serves_requests_logs_once_and_limits_resume(private_redis, caplog):
    who = subject()
    allowed, refused = await outcomes(check_rate_limits(who, [(2, 60)]) for _ in range(3))
    assert (len(allowed), len(refused)) == (2, 1)

    private_redis.stop()
    with caplog.at_level(logging.ERROR, logger="endpoint.ratelimits"):
        started = time.monotonic()
        served = [await check_rate_limits(who, [(2, 60)]) for _ in range(5)]
        assert time.monotonic() - started < 2.5  # a dead Redis never hangs a request
    assert served == [None] * 5  # fail-open: no limit, no error
    outage_lines = [r for r in caplog.records if r.name == "endpoint.ratelimits"]
    assert len(outage_lines) == 1
    assert "unreachable" in outage_lines[0].getMessage()
    assert (await limiter_health())[0] is False

    private_redis.start()
    allowed, refused = await outcomes(check_rate_limits(who, [(2, 60)]) for _ in range(3))
    assert (len(allowed), len(refused)) == (2, 1)  # a fresh Redis: counting starts over
    assert (await limiter_health())[0] is True


async def test_redis_down_with_fail_closed_refuses_with_503(private_redis, settings):
    settings.RATE_LIMIT_FAIL_CLOSED = True
    private_redis.stop()
    with pytest.raises(RateLimiterUnavailable) as refused:
        await check_rate_limits(subject(), [(2, 60)])
    assert isinstance(refused.value, errors.ServiceUnavailable)
    assert (refused.value.status, refused.value.code) == (503, "RateLimiterUnavailable")


# --- what clients read ----------------------------------------------------------


@pytest.mark.parametrize(
    "seconds, shown",
    [(1, "1s"), (360, "6m0s"), (12.5, "12.5s"), (0.12, "120ms"), (3600, "1h0m0s"), (0, "0s"), (59.9941, "59.995s")],
)
def test_reset_is_written_the_way_openai_writes_it(seconds, shown):
    headers = RateState(limit=10, remaining=3, reset_seconds=seconds).headers()
    assert headers == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "3",
        "x-ratelimit-reset-requests": shown,
    }
