"""Send one prompt to the miners a strategy picks.

At most ``in_parallel`` miner calls are in flight at a time; with
``respond_on_first_success`` the first good answer ends the dispatch and the
calls still running are cancelled. Every call is bounded by its timeout, so a
dispatch never hangs on a miner.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from endpoint import errors
from endpoint.strategies import DEFAULT, Strategy

from .metagraph import Directory, NeuronInfo
from .protocol import MinerFailure, MinerResult, MinerStream, open_miner_stream, query_miner

CANCELLED = "cancelled: another miner answered first"


@dataclass(frozen=True)
class DispatchOptions:
    timeout: float
    in_parallel: int | None = None  # None: all at once
    respond_on_first_success: bool = True


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
        raise errors.UnknownUid(f"Unknown uid(s) on netuid {directory.netuid}: {', '.join(map(str, unknown))}.")
    seen: set[int] = set()
    ordered = []
    for uid in strategy.uids:
        if uid not in seen:
            seen.add(uid)
            ordered.append(directory.get(uid))
    return ordered


def worst_case_answers(neurons: list[NeuronInfo], options: DispatchOptions) -> int:
    return min(1, len(neurons)) if options.respond_on_first_success else len(neurons)


async def dispatch(
    neurons: list[NeuronInfo],
    payload: bytes,
    options: DispatchOptions,
    *,
    keypair: Any,
    path: str,
    allow_private: bool,
) -> Dispatch:
    outcome = Dispatch()
    window = options.in_parallel or len(neurons) or 1
    pending: dict[asyncio.Task, NeuronInfo] = {}
    queue = list(neurons)

    def launch() -> None:
        while queue and len(pending) < window:
            neuron = queue.pop(0)
            coro = query_miner(
                neuron, payload, keypair=keypair, path=path, timeout=options.timeout, allow_private=allow_private
            )
            pending[asyncio.ensure_future(coro)] = neuron

    launch()
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            # Within one wake-up, keep launch order so results are deterministic.
            for task in sorted(done, key=lambda t: neurons.index(pending[t])):
                pending.pop(task)
                result = task.result()
                if result.ok and options.respond_on_first_success and outcome.successes:
                    outcome.cancelled.append(_neuron_of(neurons, result.uid))
                    continue
                (outcome.successes if result.ok else outcome.failures).append(result)
            if options.respond_on_first_success and outcome.successes:
                break
            launch()
    finally:
        for task, neuron in pending.items():
            task.cancel()
            outcome.cancelled.append(neuron)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return outcome


def _neuron_of(neurons: list[NeuronInfo], uid: int) -> NeuronInfo:
    return next(n for n in neurons if n.uid == uid)


@dataclass
class StreamRace:
    """Streams opened on several miners: the first to produce content wins."""

    winner: MinerStream | None = None
    failures: list[MinerResult] = field(default_factory=list)
    cancelled: list[NeuronInfo] = field(default_factory=list)


async def _open_or_fail(neuron: NeuronInfo, payload: bytes, timeout: float, **kwargs: Any) -> MinerStream | MinerResult:
    started = time.perf_counter()
    try:
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
) -> StreamRace:
    race = StreamRace()
    kwargs = {"keypair": keypair, "path": path, "allow_private": allow_private}
    tasks = {asyncio.ensure_future(_open_or_fail(n, payload, options.timeout, **kwargs)): n for n in neurons}
    pending = set(tasks)
    try:
        while pending and race.winner is None:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=lambda t: neurons.index(tasks[t])):
                outcome = task.result()
                if isinstance(outcome, MinerResult):
                    race.failures.append(outcome)
                elif race.winner is None:
                    race.winner = outcome
                else:
                    await outcome.close()
                    race.cancelled.append(tasks[task])
    finally:
        for task in pending:
            task.cancel()
            race.cancelled.append(tasks[task])
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return race
