"""Live statistics of every miner, updated on every miner call: success rate
and latency as exponentially weighted averages, the recent latencies (for
p50/p95), calls in flight, the last error, consecutive failures and the
cool-down that repeated failures earn.

With ``REDIS_URL`` the figures live in Redis, shared by every server process:
updates are queued and written in one pipelined round trip every
``WRITE_DELAY`` seconds (never on the request's critical path, and cheap
under load); a call that starts and ends within one batch never needs its
in-flight mark written. Reads are a snapshot refreshed at most every
``MINER_STATS_REFRESH_SECONDS``. Without Redis they live in
this process. The ``best`` strategy, the admin's neuron page and /metrics all
read the same figures from here.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from redis.exceptions import NoScriptError

from endpoint.core.loopbound import PerLoop
from endpoint.core.redis_clients import UNREACHABLE, async_redis, report_outage, sync_redis

log = logging.getLogger(__name__)

NAMESPACE = "minerstats"
RECENT = 64  # latencies kept per miner for percentiles
TTL_SECONDS = 7 * 24 * 3600  # a miner gone for a week is forgotten
INFLIGHT_GRACE = 5.0  # a call's in-flight mark outlives its timeout by this much (a crashed process)
WRITE_DELAY = 0.25  # seconds updates wait to share one round trip


@dataclass(frozen=True)
class Outcome:
    """How one miner call ended. ``ok`` None: cancelled, it neither succeeded
    nor failed; ``latency_ms`` is still a sample when the call was cancelled
    because it was too slow (a hedge won), so slowness is learnt."""

    ok: bool | None
    latency_ms: float | None = None
    error: str = ""


@dataclass
class MinerStat:
    hotkey: str
    calls: int = 0  # finished calls, successes and failures
    success: float | None = None  # weighted success rate, 0..1
    latency_ms: float | None = None  # weighted latency of answers
    recent_ms: tuple[float, ...] = ()  # newest first
    inflight: int = 0
    consecutive_failures: int = 0
    last_error: str = ""
    last_error_at: float | None = None  # epoch seconds
    cooldown_until: float | None = None  # epoch seconds
    updated_at: float | None = None  # epoch seconds of the last finished call

    def percentile(self, q: float) -> float | None:
        if not self.recent_ms:
            return None
        ordered = sorted(self.recent_ms)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    @property
    def p50_ms(self) -> float | None:
        return self.percentile(0.50)

    @property
    def p95_ms(self) -> float | None:
        return self.percentile(0.95)

    def cooling(self, now: float) -> bool:
        return self.cooldown_until is not None and self.cooldown_until > now

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "success_rate": self.success,
            "latency_ms": self.latency_ms,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "inflight": self.inflight,
            "consecutive_failures": self.consecutive_failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "cooldown_until": self.cooldown_until,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Tuning:
    alpha: float  # weight of the newest sample in the averages
    cooldown_after: int  # consecutive failures before a cool-down
    cooldown_seconds: float  # the first cool-down; each further failure doubles it
    cooldown_max_seconds: float

    @classmethod
    def from_settings(cls) -> Tuning:
        return cls(
            alpha=settings.MINER_STATS_ALPHA,
            cooldown_after=settings.ROUTING_COOLDOWN_FAILURES,
            cooldown_seconds=settings.ROUTING_COOLDOWN_SECONDS,
            cooldown_max_seconds=settings.ROUTING_COOLDOWN_MAX_SECONDS,
        )

    def cooldown(self, failures: int) -> float:
        return min(self.cooldown_seconds * 2 ** (failures - self.cooldown_after), self.cooldown_max_seconds)


def apply_outcome(stat: MinerStat, outcome: Outcome, tuning: Tuning, now: float) -> None:
    """The update rule; RECORD_SCRIPT below is the same rule, atomic in Redis."""
    if outcome.latency_ms is not None and outcome.ok is not False:
        ms = outcome.latency_ms
        stat.latency_ms = ms if stat.latency_ms is None else stat.latency_ms + tuning.alpha * (ms - stat.latency_ms)
        stat.recent_ms = (ms, *stat.recent_ms)[:RECENT]
    if outcome.ok is None:
        return
    sample = 1.0 if outcome.ok else 0.0
    stat.calls += 1
    stat.updated_at = now
    stat.success = sample if stat.success is None else stat.success + tuning.alpha * (sample - stat.success)
    if outcome.ok:
        stat.consecutive_failures, stat.cooldown_until = 0, None
        return
    stat.consecutive_failures += 1
    stat.last_error, stat.last_error_at = outcome.error[:200], now
    if stat.consecutive_failures >= tuning.cooldown_after:
        stat.cooldown_until = now + tuning.cooldown(stat.consecutive_failures)


# KEYS: the miner's hash, its recent-latency list, its in-flight set.
# ARGV: call id, ok (1, 0 or -1 for cancelled), latency ms ('' for none),
# error, now, alpha, cooldown_after, cooldown_seconds, cooldown_max, recent, ttl.
RECORD_SCRIPT = """
redis.call('ZREM', KEYS[3], ARGV[1])
local ok = tonumber(ARGV[2])
local alpha = tonumber(ARGV[6])
if ARGV[3] ~= '' and ok ~= 0 then
  local ms = tonumber(ARGV[3])
  local l = tonumber(redis.call('HGET', KEYS[1], 'latency'))
  if l == nil then l = ms else l = l + alpha * (ms - l) end
  redis.call('HSET', KEYS[1], 'latency', l)
  redis.call('LPUSH', KEYS[2], ms)
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[10]) - 1)
end
if ok >= 0 then
  redis.call('HINCRBY', KEYS[1], 'calls', 1)
  redis.call('HSET', KEYS[1], 'at', ARGV[5])
  local s = tonumber(redis.call('HGET', KEYS[1], 'success'))
  if s == nil then s = ok else s = s + alpha * (ok - s) end
  redis.call('HSET', KEYS[1], 'success', s)
  if ok == 1 then
    redis.call('HSET', KEYS[1], 'cf', 0)
    redis.call('HDEL', KEYS[1], 'cool')
  else
    local cf = redis.call('HINCRBY', KEYS[1], 'cf', 1)
    redis.call('HSET', KEYS[1], 'err', ARGV[4], 'err_at', ARGV[5])
    local after = tonumber(ARGV[7])
    if cf >= after then
      local pause = math.min(tonumber(ARGV[8]) * 2 ^ (cf - after), tonumber(ARGV[9]))
      redis.call('HSET', KEYS[1], 'cool', tonumber(ARGV[5]) + pause)
    end
  end
end
local ttl = tonumber(ARGV[11])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return 1
"""
RECORD_SHA = hashlib.sha1(RECORD_SCRIPT.encode()).hexdigest()


def _keys(hotkey: str) -> tuple[str, str, str]:
    # The braces keep one miner's keys in one Redis Cluster slot.
    base = f"{NAMESPACE}:{{{hotkey}}}"
    return base, base + ":recent", base + ":inflight"


def _stat_from_redis(hotkey: str, fields: dict[bytes, bytes], recent: list[bytes], inflight: int) -> MinerStat:
    def number(name: str) -> float | None:
        raw = fields.get(name.encode())
        return float(raw) if raw is not None else None

    return MinerStat(
        hotkey=hotkey,
        calls=int(number("calls") or 0),
        success=number("success"),
        latency_ms=number("latency"),
        recent_ms=tuple(float(v) for v in recent),
        inflight=inflight,
        consecutive_failures=int(number("cf") or 0),
        last_error=(fields.get(b"err") or b"").decode(errors="replace"),
        last_error_at=number("err_at"),
        cooldown_until=number("cool"),
        updated_at=number("at"),
    )


# --- the books -------------------------------------------------------------


class LocalBook:
    """The figures in this process (no REDIS_URL)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the admin reads from sync threads
        self._stats: dict[str, MinerStat] = {}

    def started(self, hotkey: str, call_id: str, timeout: float) -> None:
        with self._lock:
            self._stats.setdefault(hotkey, MinerStat(hotkey)).inflight += 1

    def finished(self, hotkey: str, call_id: str, outcome: Outcome) -> None:
        with self._lock:
            stat = self._stats.setdefault(hotkey, MinerStat(hotkey))
            stat.inflight = max(0, stat.inflight - 1)
            apply_outcome(stat, outcome, Tuning.from_settings(), time.time())

    async def snapshot(self, hotkeys: Iterable[str]) -> dict[str, MinerStat]:
        return self.read(hotkeys)

    def read(self, hotkeys: Iterable[str]) -> dict[str, MinerStat]:
        with self._lock:
            return {h: replace(self._stats[h]) for h in hotkeys if h in self._stats}

    async def flush(self) -> None:
        return None

    def clear(self) -> None:
        with self._lock:
            self._stats.clear()


@dataclass
class _Pending:
    starts: dict[str, tuple[str, float]] = field(default_factory=dict)  # call id -> (hotkey, mark expiry)
    ends: list[tuple[str, str, Outcome]] = field(default_factory=list)  # (hotkey, call id, outcome)
    task: asyncio.Task | None = None


def _new_pending(_: None) -> _Pending:
    return _Pending()


class RedisBook:
    """The figures in Redis, for every process. Writes are batched per event
    loop; a snapshot is cached for MINER_STATS_REFRESH_SECONDS."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pending: PerLoop[None, _Pending] = PerLoop()
        self._cache: tuple[float, frozenset[str], dict[str, MinerStat]] | None = None

    # writes

    def started(self, hotkey: str, call_id: str, timeout: float) -> None:
        self._batch().starts[call_id] = (hotkey, time.time() + timeout + INFLIGHT_GRACE)

    def finished(self, hotkey: str, call_id: str, outcome: Outcome) -> None:
        batch = self._batch()
        batch.starts.pop(call_id, None)  # started and ended within one batch: no mark to write
        batch.ends.append((hotkey, call_id, outcome))

    def _batch(self) -> _Pending:
        pending = self._pending.get(None, _new_pending)
        if pending.task is None:
            pending.task = asyncio.get_running_loop().create_task(self._write_soon(pending))
        return pending

    async def _write_soon(self, pending: _Pending) -> None:
        try:
            await asyncio.sleep(WRITE_DELAY)
            while pending.starts or pending.ends:
                starts, ends = pending.starts, pending.ends
                pending.starts, pending.ends = {}, []
                await self._write(starts, ends)
        except UNREACHABLE as exc:
            self._report_outage(exc)
        finally:
            pending.task = None

    async def _write(self, starts: dict[str, tuple[str, float]], ends: list[tuple[str, str, Outcome]]) -> None:
        try:
            await self._pipeline(starts, ends)
        except NoScriptError:  # a restarted Redis forgot the script; the other writes are idempotent
            await async_redis(self.url).script_load(RECORD_SCRIPT)
            await self._pipeline(starts, ends)

    async def _pipeline(self, starts: dict[str, tuple[str, float]], ends: list[tuple[str, str, Outcome]]) -> None:
        tuning = Tuning.from_settings()
        now = time.time()
        pipe = async_redis(self.url).pipeline(transaction=False)
        for call_id, (hotkey, expiry) in starts.items():
            inflight = _keys(hotkey)[2]
            pipe.zadd(inflight, {call_id: expiry})
            pipe.expire(inflight, TTL_SECONDS)
        for hotkey, call_id, outcome in ends:
            keys = _keys(hotkey)
            ok = -1 if outcome.ok is None else int(outcome.ok)
            latency = "" if outcome.latency_ms is None else f"{outcome.latency_ms:.3f}"
            args = [call_id, ok, latency, outcome.error[:200], now, tuning.alpha, tuning.cooldown_after]
            args += [tuning.cooldown_seconds, tuning.cooldown_max_seconds, RECENT, TTL_SECONDS]
            pipe.evalsha(RECORD_SHA, len(keys), *keys, *args)
        await pipe.execute()

    async def flush(self) -> None:
        """Wait until what this event loop queued is written (tests, shutdown)."""
        pending = self._pending.peek(None)
        while pending is not None and pending.task is not None:
            await asyncio.shield(pending.task)
        self._cache = None

    # reads

    async def snapshot(self, hotkeys: Iterable[str]) -> dict[str, MinerStat]:
        wanted = frozenset(hotkeys)
        now = time.monotonic()
        cached = self._cache
        if cached and now - cached[0] < settings.MINER_STATS_REFRESH_SECONDS and wanted <= cached[1]:
            return cached[2]
        try:
            pipe = async_redis(self.url).pipeline(transaction=False)
            _queue_reads(pipe, wanted)
            stats = _parse_reads(wanted, await pipe.execute())
        except UNREACHABLE as exc:
            self._report_outage(exc)
            return cached[2] if cached else {}
        self._cache = (now, wanted, stats)
        return stats

    def read(self, hotkeys: Iterable[str]) -> dict[str, MinerStat]:
        """A fresh synchronous read (admin pages, /metrics)."""
        wanted = frozenset(hotkeys)
        try:
            pipe = sync_redis(self.url).pipeline(transaction=False)
            _queue_reads(pipe, wanted)
            return _parse_reads(wanted, pipe.execute())
        except UNREACHABLE as exc:
            self._report_outage(exc)
            return {}

    def clear(self) -> None:
        self._cache = None
        client = sync_redis(self.url)
        for name in client.scan_iter(f"{NAMESPACE}:*", count=500):
            client.delete(name)

    def _report_outage(self, exc: BaseException) -> None:
        report_outage(log, "miner statistics", self.url, exc, "routing on what is known")


def _queue_reads(pipe: Any, hotkeys: frozenset[str]) -> None:
    now = time.time()
    for hotkey in sorted(hotkeys):
        base, recent, inflight = _keys(hotkey)
        pipe.hgetall(base)
        pipe.lrange(recent, 0, RECENT - 1)
        pipe.zcount(inflight, f"({now}", "+inf")


def _parse_reads(hotkeys: frozenset[str], replies: list[Any]) -> dict[str, MinerStat]:
    stats = {}
    for i, hotkey in enumerate(sorted(hotkeys)):
        fields, recent, inflight = replies[3 * i : 3 * i + 3]
        if fields or inflight:
            stats[hotkey] = _stat_from_redis(hotkey, fields, recent, int(inflight))
    return stats


_books: dict[str, LocalBook | RedisBook] = {}


def miner_book() -> LocalBook | RedisBook:
    url = settings.REDIS_URL or ""
    book = _books.get(url)
    if book is None:
        book = _books[url] = RedisBook(url) if url else LocalBook()
    return book


# --- what dispatch calls ------------------------------------------------------


class CallRecord:
    """One miner call, as the book sees it: marked in flight when made,
    recorded once when it ends."""

    __slots__ = ("book", "call_id", "done", "hotkey", "started_at")

    def __init__(self, hotkey: str, timeout: float) -> None:
        self.book = miner_book()
        self.hotkey = hotkey
        self.call_id = uuid.uuid4().hex
        self.started_at = time.perf_counter()
        self.done = False
        self.book.started(hotkey, self.call_id, timeout)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started_at) * 1000

    def _finish(self, outcome: Outcome) -> None:
        if not self.done:
            self.done = True
            self.book.finished(self.hotkey, self.call_id, outcome)

    def succeeded(self, latency_ms: float) -> None:
        self._finish(Outcome(True, latency_ms))

    def failed(self, error: str) -> None:
        self._finish(Outcome(False, None, error))

    def cancelled(self, *, too_slow: bool = False) -> None:
        self._finish(Outcome(None, self.elapsed_ms() if too_slow else None))


def live_miner_stats(hotkeys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The figures as plain dicts, for the admin and /metrics (sync code)."""
    return {hotkey: stat.as_dict() for hotkey, stat in miner_book().read(hotkeys).items()}
