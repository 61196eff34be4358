"""The ``best:N`` strategy: pick miners by what they have been doing lately.

Each serving miner gets a score from its live statistics (minerstats.py):

    score = success² × speed × (0.8 + 0.2 × incentive share) / (1 + load)

- success: the weighted success rate, pulled towards an optimistic prior
  while there are few samples, so a newcomer is tried before it is judged;
- speed: ref / (ref + latency), ref being the median latency of the known
  miners, so a miner twice as slow as the typical one scores a third less;
- incentive: the subnet's own opinion, a tie-breaker between equals;
- load: calls in flight, so a burst spreads over several good miners.

A miner's record fades as it ages (half-life ``ROUTING_FORGET_SECONDS``), so
one judged badly long ago drifts back to the prior and is tried again.
Miners still learning (fewer than ``MIN_SAMPLES`` calls) also get a bounded
exploration share: with probability ``ROUTING_EXPLORATION`` one slot goes to
one of them at random. Miners that failed ``ROUTING_COOLDOWN_FAILURES`` times
in a row sit out a cool-down (doubling, capped); when it expires the next
prompt tries one of them in its last slot (half-open): a success clears the
record, a failure starts a longer cool-down. The unpicked miners, best first,
are the alternates that dispatch retries and hedges with.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field

from django.conf import settings

from .metagraph import Directory, NeuronInfo
from .minerstats import MinerStat, miner_book

MIN_SAMPLES = 5  # calls before a miner is judged on its own record
PRIOR_SUCCESS = 0.9
PRIOR_WEIGHT = 3.0
DEFAULT_REF_MS = 1000.0
HEDGE_MIN_SAMPLES = 10  # successful answers before a miner's p95 is trusted for hedging
HEDGE_FLOOR_SECONDS = 0.02
_RNG = random.Random()


@dataclass
class Route:
    """Where a prompt goes first, and who stands in when that fails or lags."""

    neurons: list[NeuronInfo]
    alternates: list[NeuronInfo] = field(default_factory=list)
    retries: int = 0
    hedge_after: dict[int, float] = field(default_factory=dict)  # uid -> seconds before a backup is raced


def _evidence(stat: MinerStat, now: float) -> float:
    """How many calls' worth of trust the record deserves: the weighted
    average remembers about 1/alpha calls, and fades with age."""
    age = max(0.0, now - (stat.updated_at or now))
    return min(stat.calls, 1 / settings.MINER_STATS_ALPHA) * 0.5 ** (age / settings.ROUTING_FORGET_SECONDS)


def _success(stat: MinerStat | None, now: float) -> float:
    if stat is None or stat.success is None:
        return PRIOR_SUCCESS
    weight = _evidence(stat, now)
    return (stat.success * weight + PRIOR_SUCCESS * PRIOR_WEIGHT) / (weight + PRIOR_WEIGHT)


def score(neuron: NeuronInfo, stat: MinerStat | None, *, ref_ms: float, top_incentive: float, now: float) -> float:
    latency = ref_ms
    if stat and stat.latency_ms is not None:
        trust = _evidence(stat, now) / (_evidence(stat, now) + PRIOR_WEIGHT)
        latency = stat.latency_ms * trust + ref_ms * (1 - trust)
    speed = ref_ms / (ref_ms + latency)
    share = neuron.incentive / top_incentive if top_incentive > 0 else 0.0
    load = stat.inflight if stat else 0
    return _success(stat, now) ** 2 * speed * (0.8 + 0.2 * share) / (1 + 0.5 * load)


def _reference_latency(stats: dict[str, MinerStat]) -> float:
    known = [s.latency_ms for s in stats.values() if s.latency_ms is not None and s.calls >= MIN_SAMPLES]
    return max(1.0, statistics.median(known)) if known else DEFAULT_REF_MS


@dataclass
class Ranking:
    available: list[NeuronInfo]  # best first
    learning: list[NeuronInfo]  # too few calls to judge
    probing: list[NeuronInfo]  # back from a cool-down, not yet tried again
    cooling: list[NeuronInfo]  # sitting out a cool-down, soonest free first


def rank(candidates: list[NeuronInfo], stats: dict[str, MinerStat], now: float) -> Ranking:
    ref_ms = _reference_latency(stats)
    top_incentive = max((n.incentive for n in candidates), default=0.0)
    available, cooling = [], []
    for neuron in candidates:
        stat = stats.get(neuron.hotkey)
        (cooling if stat is not None and stat.cooling(now) else available).append(neuron)

    def key(n: NeuronInfo) -> tuple[float, int]:
        return (-score(n, stats.get(n.hotkey), ref_ms=ref_ms, top_incentive=top_incentive, now=now), n.uid)

    available.sort(key=key)
    cooling.sort(key=lambda n: (stats[n.hotkey].cooldown_until, n.uid))
    probing = [n for n in available if _probing(stats.get(n.hotkey))]
    learning = [n for n in available if n not in probing and _learning(stats.get(n.hotkey))]
    return Ranking(available, learning, probing, cooling)


def _learning(stat: MinerStat | None) -> bool:
    return stat is None or stat.calls < MIN_SAMPLES


def _probing(stat: MinerStat | None) -> bool:
    return stat is not None and stat.consecutive_failures >= settings.ROUTING_COOLDOWN_FAILURES


def _hedge_delay(stat: MinerStat | None) -> float | None:
    if stat is None or len(stat.recent_ms) < HEDGE_MIN_SAMPLES or stat.p95_ms is None:
        return None
    return max(HEDGE_FLOOR_SECONDS, stat.p95_ms / 1000)


async def choose_best(n: int, directory: Directory, *, rng: random.Random | None = None) -> Route:
    candidates = list(directory.ranked)
    stats = await miner_book().snapshot(c.hotkey for c in candidates)
    return plan_route(n, candidates, stats, now=time.time(), rng=rng or _RNG)


def plan_route(
    n: int,
    candidates: list[NeuronInfo],
    stats: dict[str, MinerStat],
    *,
    now: float,
    rng: random.Random,
) -> Route:
    ranking = rank(candidates, stats, now)
    picks = ranking.available[:n]
    trial = None
    if ranking.probing:
        trial = ranking.probing[0]
    elif ranking.learning and rng.random() < settings.ROUTING_EXPLORATION:
        trial = rng.choice(ranking.learning)
    if trial is not None and trial not in picks:  # it takes the last slot
        picks = [*picks[: n - 1], trial] if len(picks) >= n else [*picks, trial]
    # Fewer good miners than asked for: those cooling down the shortest fill in.
    picks += ranking.cooling[: n - len(picks)]
    alternates = [c for c in ranking.available if c not in picks] + [c for c in ranking.cooling if c not in picks]
    hedges = {p.uid: delay for p in picks if (delay := _hedge_delay(stats.get(p.hotkey))) is not None}
    return Route(picks, alternates, retries=settings.ROUTING_MAX_RETRIES, hedge_after=hedges)
