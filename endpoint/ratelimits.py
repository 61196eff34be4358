"""Rate limits: rules of ``times`` requests per ``seconds``, global or a key's
own, counted exactly and shared by every server process.

Each rule is a sliding window kept in Redis as a sorted set of request
timestamps. One Lua script checks every rule of a subject and, only if all of
them have room, records the request in all of them: one round trip, atomic,
so 50 concurrent requests under "10 per 60 s" let exactly 10 through and a
refused request takes no slot anywhere. The clock is Redis's own (``TIME``),
so processes on different hosts agree on the windows.

Without ``REDIS_URL`` (a laptop) the same windows live in this process.
When Redis cannot be reached, requests are served without limits (fail-open)
unless ``RATE_LIMIT_FAIL_CLOSED`` is set, and the outage is logged at most
once a minute. Operators edit the rules through ``keys.rate_limits``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from endpoint.core.config import parse_rate_limits
from endpoint.core.errors import ConfigError, RateLimiterUnavailable, RateLimitHit
from endpoint.core.loopbound import PerLoop
from endpoint.core.redis_clients import UNREACHABLE, async_redis, close_async_redis, redis_location, report_outage

log = logging.getLogger(__name__)

Rule = tuple[int, int]  # (times, seconds)

KEY_NAMESPACE = "ratelimit"


# --- what a client is told ---------------------------------------------------


def openai_duration(seconds: float) -> str:
    """A duration the way OpenAI's x-ratelimit-reset-* headers write it
    (Go's time.Duration): "120ms", "1s", "12.5s", "6m0s", "1h0m0s"."""
    ms = max(0, math.ceil(seconds * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0") + "s" if fraction else f"{whole}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


@dataclass(frozen=True)
class RateState:
    """The tightest rule after a request: the one with fewest requests left
    (ties: the one that resets soonest). ``reset_seconds`` is, as in OpenAI's
    headers, the time until the rule is back to its full allowance."""

    limit: int
    remaining: int
    reset_seconds: float

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": openai_duration(self.reset_seconds),
        }


@dataclass(frozen=True)
class _Window:
    """One rule's window as the counter left it (seconds are floats)."""

    rule: Rule
    used: int  # requests in the window, this one included when allowed
    reset: float  # until the window is empty again
    wait: float  # until a slot frees (only meaningful when refused)


def _verdict(allowed: bool, windows: list[_Window]) -> RateState:
    """The state to report; raises RateLimitHit when the request was refused."""
    states = [RateState(w.rule[0], max(0, w.rule[0] - w.used), w.reset) for w in windows]
    tightest = min(states, key=lambda s: (s.remaining, s.reset_seconds))
    if allowed:
        return tightest
    # A request needs room in every rule, so it must wait for the slowest one to free a slot.
    blocking = max((w for w in windows if w.used >= w.rule[0]), key=lambda w: w.wait)
    raise RateLimitHit(tightest, blocking.rule, retry_after=max(1, math.ceil(blocking.wait)))


# --- which rules apply -------------------------------------------------------


def rules_for(key_rate_limits: list[dict] | None, config) -> list[Rule]:
    """The rules a request is held to: none when rate limiting is off; else the
    key's own rules when it has any, which replace the global ones. All of
    the returned rules apply at once."""
    if not config.rate_limiting_enabled:
        return []
    if key_rate_limits:
        try:
            return _unique([(r["times"], r["seconds"]) for r in parse_rate_limits(key_rate_limits)])
        except ConfigError:
            # Bad JSON typed into the admin must not lift every limit from the key.
            log.warning("a key has malformed rate_limits; the global rules apply to it")
    return _unique([(int(times), int(seconds)) for times, seconds in config.global_rate_limits])


def _unique(rules: list[Rule]) -> list[Rule]:
    # The same rule twice would count every request twice in one window.
    return list(dict.fromkeys(rules))


# --- counting in Redis -------------------------------------------------------

# KEYS: one sorted set per rule. ARGV[1]: this request's member; then for
# rule i, ARGV[2i] = times and ARGV[2i+1] = window in microseconds.
# Returns {allowed, used_1, reset_1, wait_1, used_2, ...} in microseconds.
COUNT_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local used = {}
local allowed = 1
for i = 1, #KEYS do
  local times = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  used[i] = redis.call('ZCARD', KEYS[i])
  if used[i] >= times then allowed = 0 end
end
local out = {allowed}
for i = 1, #KEYS do
  local times = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local wait = 0
  if allowed == 1 then
    redis.call('ZADD', KEYS[i], now, ARGV[1])
    redis.call('PEXPIRE', KEYS[i], math.ceil(window / 1000) + 1000)
    used[i] = used[i] + 1
  elseif used[i] >= times then
    -- a slot frees when enough of the oldest entries have left the window
    local entry = redis.call('ZRANGE', KEYS[i], used[i] - times, used[i] - times, 'WITHSCORES')
    wait = tonumber(entry[2]) + window - now
  end
  local reset = 0
  local newest = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if newest[2] then reset = tonumber(newest[2]) + window - now end
  out[#out + 1] = used[i]
  out[#out + 1] = reset
  out[#out + 1] = wait
end
return out
"""


# The counting script, registered once per event loop and URL.
_scripts: PerLoop[str, Any] = PerLoop()


def _count_script(url: str) -> Any:
    return _scripts.get(url, lambda url: async_redis(url).register_script(COUNT_SCRIPT))


async def close_limiter() -> None:
    """Close this event loop's Redis clients (tests, shutdown)."""
    _scripts.pop()
    await close_async_redis()


def _redis_key(subject: str, rule: Rule) -> str:
    # The braces make every rule of a subject hash to one Redis Cluster slot.
    return f"{KEY_NAMESPACE}:{{{subject}}}:{rule[0]}/{rule[1]}"


async def _count_in_redis(url: str, subject: str, rules: list[Rule]) -> RateState:
    args: list[Any] = [uuid.uuid4().hex]
    for times, seconds in rules:
        args += [times, seconds * 1_000_000]
    reply = await _count_script(url)(keys=[_redis_key(subject, rule) for rule in rules], args=args)
    numbers = [int(n) for n in reply]
    windows = [
        _Window(rule, used=numbers[1 + 3 * i], reset=numbers[2 + 3 * i] / 1e6, wait=numbers[3 + 3 * i] / 1e6)
        for i, rule in enumerate(rules)
    ]
    return _verdict(bool(numbers[0]), windows)


# --- counting in this process (no REDIS_URL) ---------------------------------


class _LocalWindows:
    """The Lua script's sliding windows, for a single process."""

    SWEEP_EVERY = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()  # sync views run on several threads
        self._hits: dict[tuple[str, Rule], deque[float]] = {}
        self._calls = 0

    def count(self, subject: str, rules: list[Rule]) -> RateState:
        with self._lock:
            now = time.monotonic()
            self._sweep_now_and_then(now)
            hits = [self._hits.setdefault((subject, rule), deque()) for rule in rules]
            for rule, times in zip(rules, hits, strict=True):
                while times and times[0] <= now - rule[1]:
                    times.popleft()
            allowed = all(len(times) < rule[0] for rule, times in zip(rules, hits, strict=True))
            windows = []
            for rule, times in zip(rules, hits, strict=True):
                limit, seconds = rule
                wait = 0.0
                if allowed:
                    times.append(now)
                elif len(times) >= limit:
                    wait = times[len(times) - limit] + seconds - now
                reset = times[-1] + seconds - now if times else 0.0
                windows.append(_Window(rule, used=len(times), reset=reset, wait=wait))
        return _verdict(allowed, windows)

    def _sweep_now_and_then(self, now: float) -> None:
        # Subjects that stopped calling would otherwise keep their windows forever.
        self._calls += 1
        if self._calls % self.SWEEP_EVERY:
            return
        for (_, (_, seconds)), times in list(self._hits.items()):
            while times and times[0] <= now - seconds:
                times.popleft()
        self._hits = {k: v for k, v in self._hits.items() if v}


_local = _LocalWindows()


# --- the check -----------------------------------------------------------------


def _report_outage(url: str, exc: BaseException) -> None:
    if _fail_closed():
        consequence = "refusing requests (RATE_LIMIT_FAIL_CLOSED)"
    else:
        consequence = "serving requests without rate limits"
    report_outage(log, "rate limiter", url, exc, consequence)


def _fail_closed() -> bool:
    return settings.RATE_LIMIT_FAIL_CLOSED


async def check_rate_limits(subject: str, rules: list[Rule]) -> RateState | None:
    """Count one request by ``subject`` (``"key:<pk>"``, ``"user:<id>"``)
    against every rule at once. Returns the tightest rule's state, None when
    there are no rules or Redis is down (fail-open); raises RateLimitHit (a
    RateLimitExceeded) when over, without counting the request."""
    rules = _unique(rules)
    if not rules:
        return None
    url = settings.REDIS_URL
    if not url:
        return _local.count(subject, rules)
    try:
        return await _count_in_redis(url, subject, rules)
    except UNREACHABLE as exc:
        _report_outage(url, exc)
        if _fail_closed():
            raise RateLimiterUnavailable() from exc
        return None


async def limiter_health() -> tuple[bool, str]:
    """For /health/ready: can the limiter count right now?"""
    url = settings.REDIS_URL
    if not url:
        return True, "in-process (no REDIS_URL)"
    try:
        await async_redis(url).ping()
    except UNREACHABLE as exc:
        return False, f"Redis at {redis_location(url)} unreachable ({type(exc).__name__})"
    return True, f"Redis at {redis_location(url)} answers"
