"""Send one prompt to the miners a strategy picks.

At most ``in_parallel`` miner calls are in flight at a time; with
``respond_on_first_success`` the first good answer (or the first ``answers``
good answers, from as many miners: OpenAI's ``n``) ends the dispatch and the
calls still running are cancelled. Every call is bounded by its timeout, so a
dispatch never hangs on a miner.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from endpoint.core import errors
from endpoint.core.errors import MinerFailure
from endpoint.core.strategies import DEFAULT, Strategy

from .metagraph import Directory, NeuronInfo
from .minerstats import CallRecord
from .protocol import MinerBytes, MinerResult, MinerStream, Wire, open_miner_bytes, open_miner_stream, query_miner
from .routing import Route
from .structured import AnswerFormat

MIN_RETRY_SECONDS = 0.2  # a retry or hedge needs at least this much of the deadline left


@dataclass(frozen=True)
class DispatchOptions:
    timeout: float
    in_parallel: int | None = None  # None: all at once
    respond_on_first_success: bool = True
    answers: int = 1  # with respond_on_first_success: how many good answers end the dispatch


@dataclass
class Dispatch:
    """What happened to one prompt: answers and failures in the order they came."""

    successes: list[MinerResult] = field(default_factory=list)
    failures: list[MinerResult] = field(default_factory=list)
    cancelled: list[NeuronInfo] = field(default_factory=list)

    @property
    def queried(self) -> int:
        return len(self.successes) + len(self.failures) + len(self.cancelled)

    def seed_json(self) -> dict[str, Any]:
        return {
            "choices": [r.seed_choice(i) for i, r in enumerate(self.successes)],
            "failed_responses": [r.seed_failure(i) for i, r in enumerate(self.failures)],
        }


def resolve_neurons(strategy: Strategy | None, directory: Directory) -> list[NeuronInfo]:
    """The miners to query, in order. Unknown uids are a client error."""
    strategy = strategy or DEFAULT
    if strategy.top_n is not None:
        return directory.top_n(strategy.top_n)
    unknown = [uid for uid in strategy.uids if directory.get(uid) is None]
    if unknown:
        named = ", ".join(map(str, unknown[:20])) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
        raise errors.UnknownUid(f"Unknown uid(s) on netuid {directory.netuid}: {named}.")
    seen: set[int] = set()
    ordered = []
    for uid in strategy.uids:
        if uid not in seen:
            seen.add(uid)
            ordered.append(directory.get(uid))
    return ordered


def worst_case_answers(neurons: list[NeuronInfo], options: DispatchOptions) -> int:
    return min(options.answers, len(neurons)) if options.respond_on_first_success else len(neurons)


def worst_case_seconds(options: DispatchOptions) -> float:
    """How long a call may take: its timeout bounds every miner it asks, in
    parallel or one after another, and a stream to its end."""
    return options.timeout


@dataclass
class _Call:
    neuron: NeuronInfo
    record: CallRecord
    order: int
    started: float  # loop time
    hedge_after: float | None = None


class _Attempts:
    """The miner calls of one prompt: who is asked next, what may still be
    retried or hedged, and every call recorded in the live statistics."""

    def __init__(self, route: Route, options: DispatchOptions, start: Any) -> None:
        self.loop = asyncio.get_running_loop()
        self.options = options
        self.alternates = list(route.alternates)
        self.retries_left = route.retries
        self.hedge_after = route.hedge_after if options.respond_on_first_success and settings.ROUTING_HEDGE else {}
        self.hedged = False
        self.deadline = self.loop.time() + options.timeout
        self.pending: dict[asyncio.Task, _Call] = {}
        self.start = start  # neuron, timeout -> coroutine
        self.launched = 0

    def launch(self, neuron: NeuronInfo, timeout: float) -> None:
        call = _Call(neuron, CallRecord(neuron.hotkey, timeout), self.launched, self.loop.time())
        call.hedge_after = self.hedge_after.get(neuron.uid)
        self.launched += 1
        self.pending[asyncio.ensure_future(self.start(neuron, timeout))] = call

    def left(self) -> float:
        return self.deadline - self.loop.time()

    def launch_alternate(self) -> bool:
        """Ask the next-best miner, if there is one and time for it."""
        if not self.alternates or self.left() < MIN_RETRY_SECONDS:
            return False
        self.launch(self.alternates.pop(0), min(self.options.timeout, self.left()))
        return True

    def retry(self) -> None:
        if self.retries_left > 0 and self.launch_alternate():
            self.retries_left -= 1

    def next_hedge(self) -> float | None:
        """Seconds until a pending call is slow enough to race a backup."""
        if self.hedged or not self.alternates:
            return None
        due = [c.started + c.hedge_after for c in self.pending.values() if c.hedge_after is not None]
        return max(0.0, min(due) - self.loop.time()) if due else None

    def hedge(self) -> None:
        self.hedged = True  # one backup per prompt, and only one try at it
        self.launch_alternate()

    def cancel_rest(self, cancelled: list[NeuronInfo]) -> list[asyncio.Task]:
        now = self.loop.time()
        tasks = list(self.pending)
        for task, call in self.pending.items():
            task.cancel()
            too_slow = call.hedge_after is not None and now - call.started > call.hedge_after
            call.record.cancelled(too_slow=too_slow)
            cancelled.append(call.neuron)
        self.pending.clear()
        return tasks


async def dispatch(
    neurons: list[NeuronInfo],
    payload: bytes,
    options: DispatchOptions,
    *,
    keypair: Any,
    path: str,
    allow_private: bool,
    route: Route | None = None,
    expect: AnswerFormat | None = None,
    wire: Wire | None = None,
) -> Dispatch:
    """Ask the miners; a ``route`` (the best strategy) adds retries on other
    miners when one fails and a backup raced against a slow first answer."""
    outcome = Dispatch()
    route = route or Route(list(neurons))

    def start(neuron: NeuronInfo, timeout: float):
        return query_miner(
            neuron,
            payload,
            keypair=keypair,
            path=path,
            timeout=timeout,
            allow_private=allow_private,
            expect=expect,
            wire=wire,
        )

    attempts = _Attempts(route, options, start)
    window = options.in_parallel or len(neurons) or 1
    queue = list(neurons)

    def fill() -> None:
        # The request's timeout is the budget of every miner it asks: with
        # in_parallel, a miner asked later gets only what is left of it.
        while queue and len(attempts.pending) < window and attempts.left() >= MIN_RETRY_SECONDS:
            attempts.launch(queue.pop(0), min(options.timeout, attempts.left()))

    def enough() -> bool:
        # Never more answers than were held for: a retry's answer that comes
        # in with the last one wanted is cancelled, not charged.
        return options.respond_on_first_success and len(outcome.successes) >= options.answers

    fill()
    try:
        while attempts.pending:
            wait = attempts.next_hedge()
            done, _ = await asyncio.wait(attempts.pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                attempts.hedge()
                continue
            # Within one wake-up, keep launch order so results are deterministic.
            for task in sorted(done, key=lambda t: attempts.pending[t].order):
                call = attempts.pending.pop(task)
                result = task.result()
                if result.ok and enough():
                    call.record.cancelled()
                    outcome.cancelled.append(call.neuron)
                    continue
                if result.ok:
                    call.record.succeeded(result.response_ms)
                    outcome.successes.append(result)
                else:
                    call.record.failed(result.error)
                    outcome.failures.append(result)
                    attempts.retry()
            if enough():
                break
            fill()
    finally:
        cancelled = attempts.cancel_rest(outcome.cancelled)
        if cancelled:
            await asyncio.gather(*cancelled, return_exceptions=True)
    return outcome


@dataclass
class StreamRace:
    """Streams opened on several miners: the first to produce content wins."""

    winner: MinerStream | MinerBytes | None = None
    failures: list[MinerResult] = field(default_factory=list)
    cancelled: list[NeuronInfo] = field(default_factory=list)


async def _open_or_fail(
    neuron: NeuronInfo, payload: bytes, timeout: float, wire: Wire | None, **kwargs: Any
) -> MinerStream | MinerBytes | MinerResult:
    started = time.perf_counter()
    try:
        if wire is not None:
            return await open_miner_bytes(neuron, payload, timeout=timeout, wire=wire, **kwargs)
        return await open_miner_stream(neuron, payload, timeout=timeout, **kwargs)
    except MinerFailure as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return MinerResult(neuron.uid, neuron.hotkey, False, error=str(exc), status=exc.status, response_ms=elapsed)


async def race_streams(
    neurons: list[NeuronInfo],
    payload: bytes,
    options: DispatchOptions,
    *,
    keypair: Any,
    path: str,
    allow_private: bool,
    route: Route | None = None,
    expect: AnswerFormat | None = None,
    wire: Wire | None = None,
) -> StreamRace:
    """Open streams on the miners; the first to produce content wins. With a
    ``route``, a miner failing before any content is replaced by the next
    best (nothing has reached the client yet, so a retry is invisible)."""
    race = StreamRace()
    kwargs = {"keypair": keypair, "path": path, "allow_private": allow_private, "expect": expect}

    def start(neuron: NeuronInfo, timeout: float):
        return _open_or_fail(neuron, payload, timeout, wire, **kwargs)

    attempts = _Attempts(route or Route(list(neurons)), replace(options, respond_on_first_success=False), start)
    for neuron in neurons:
        attempts.launch(neuron, options.timeout)
    try:
        while attempts.pending and race.winner is None:
            done, _ = await asyncio.wait(attempts.pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=lambda t: attempts.pending[t].order):
                call = attempts.pending.pop(task)
                opened = task.result()
                if isinstance(opened, MinerResult):
                    call.record.failed(opened.error)
                    race.failures.append(opened)
                    if race.winner is None:
                        attempts.retry()
                elif race.winner is None:
                    call.record.succeeded(opened.response_ms)
                    race.winner = opened
                else:
                    call.record.cancelled()
                    await opened.close()
                    race.cancelled.append(call.neuron)
    finally:
        cancelled = attempts.cancel_rest(race.cancelled)
        if cancelled:
            await asyncio.gather(*cancelled, return_exceptions=True)
    return race
