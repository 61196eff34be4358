"""Send one prompt to the miners a strategy picks.

At most ``in_parallel`` miner calls are in flight at a time; with
``respond_on_first_success`` the first good answer ends the dispatch and the
calls still running are cancelled. Every call is bounded by its timeout, so a
dispatch never hangs on a miner.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from endpoint import errors
from endpoint.strategies import DEFAULT, Strategy

from .metagraph import Directory, NeuronInfo
from .protocol import MinerResult, query_miner

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
