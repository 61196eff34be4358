"""Prometheus metrics: what the gateway counts and ``GET /metrics``.

Several server processes (``manage.py start --workers N``) must answer one
truth, whichever process a scrape lands on. Two ways were possible:

- counters in Redis: one more network round trip on every API call (or a
  batching flusher that loses counts when a worker dies), and /metrics
  breaks exactly when Redis does;
- prometheus_client's multiprocess mode (chosen): each process adds to its
  own memory-mapped file under ``PROMETHEUS_MULTIPROC_DIR`` — no system
  call, no network — and a scrape sums the files. Counts of a worker that
  died or was restarted stay in its file, so totals never go backwards.
  ``start`` creates (and empties) the directory before the workers fork.

With a single process (tests, ``start`` with one worker) the counters live
in the process. Metagraph age and size are not counted: they are read when
scraped, from the same cached directory the gateway routes from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from logs.models import CANCELLED
from logs.services import RequestLog

log = logging.getLogger(__name__)

# Miners answer in tens of milliseconds on a LAN and up to the 60 s cap on a
# slow subnet.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)

REQUESTS = Counter("vep_requests", "API calls by route, HTTP status and error code.", ["route", "status", "code"])
MINER_LATENCY = Histogram(
    "vep_miner_response_seconds", "Time a miner took to answer or fail, by uid.", ["uid"], buckets=LATENCY_BUCKETS
)
MINER_RESPONSES = Counter(
    "vep_miner_responses", "Miners queried, by uid and result (ok, failed, cancelled).", ["uid", "result"]
)
CREDITS = Counter("vep_credits_spent", "Credits charged to API keys, by route.", ["route"])
RATE_LIMITED = Counter("vep_rate_limit_rejections", "API calls refused by a rate limit (429), by route.", ["route"])


def observe_call(entry: RequestLog) -> None:
    """Count one finished API call. Called once per call by the gateway, on
    the event loop: a few in-memory additions, no I/O, never raises."""
    try:
        REQUESTS.labels(entry.route, str(entry.status), entry.api_error).inc()
        if entry.credits_charged:
            CREDITS.labels(entry.route).inc(entry.credits_charged)
        if entry.api_error == "RateLimitExceeded":
            RATE_LIMITED.labels(entry.route).inc()
        for miner in entry.miners:
            uid = str(miner.uid)
            if miner.is_success:
                result = "ok"
            elif miner.error == CANCELLED:  # stopped waiting for it: no latency to record
                MINER_RESPONSES.labels(uid, "cancelled").inc()
                continue
            else:
                result = "failed"
            MINER_RESPONSES.labels(uid, result).inc()
            MINER_LATENCY.labels(uid).observe(miner.response_ms / 1000)
    except Exception:  # metrics must never fail an API call
        log.exception("could not count an API call in the metrics")


class MetagraphCollector(Collector):
    """Metagraph age and size, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from endpoint.network.metagraph import directory

        current = directory()
        age = GaugeMetricFamily("vep_metagraph_age_seconds", "Seconds since the metagraph was last synced (-1: never).")
        synced = current.synced_at.timestamp() if current.synced_at else None
        age.add_metric([], time.time() - synced if synced is not None else -1)
        yield age
        yield GaugeMetricFamily("vep_metagraph_neurons", "Neurons in the synced metagraph.", value=len(current.by_uid))
        yield GaugeMetricFamily(
            "vep_metagraph_serving", "Neurons serving an axon (what top_n picks from).", value=len(current.ranked)
        )


class MinerStatsCollector(Collector):
    """The live per-miner figures the best strategy routes by
    (endpoint/network/minerstats.py), read at scrape time, by uid."""

    GAUGES = (
        ("success_rate", "vep_miner_success_rate", "Weighted recent success rate of a miner (0..1)."),
        ("latency_ms", "vep_miner_latency_ms", "Weighted recent latency of a miner's answers, ms."),
        ("p95_ms", "vep_miner_latency_p95_ms", "p95 of a miner's recent answer latencies, ms."),
        ("inflight", "vep_miner_inflight", "Calls to a miner in flight."),
        ("consecutive_failures", "vep_miner_consecutive_failures", "A miner's failures in a row."),
    )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from endpoint.network.metagraph import directory
        from endpoint.network.minerstats import live_miner_stats

        neurons = directory().ranked
        stats = live_miner_stats(n.hotkey for n in neurons)
        families = {field: GaugeMetricFamily(name, text, labels=["uid"]) for field, name, text in self.GAUGES}
        cooling = GaugeMetricFamily("vep_miner_cooling_down", "1 while a miner sits out a cool-down.", labels=["uid"])
        now = time.time()
        for neuron in neurons:
            figures = stats.get(neuron.hotkey)
            if figures is None:
                continue
            for field, family in families.items():
                if figures[field] is not None:
                    family.add_metric([str(neuron.uid)], figures[field])
            until = figures["cooldown_until"]
            cooling.add_metric([str(neuron.uid)], 1.0 if until is not None and until > now else 0.0)
        yield from families.values()
        yield cooling


def render_metrics() -> bytes:
    """The Prometheus text exposition of every process's counters."""
    gauges = CollectorRegistry()
    gauges.register(MetagraphCollector())
    gauges.register(MinerStatsCollector())
    if settings.PROMETHEUS_MULTIPROC_DIR:
        summed = CollectorRegistry()
        MultiProcessCollector(summed, path=settings.PROMETHEUS_MULTIPROC_DIR)
        counters = generate_latest(summed)
    else:
        counters = generate_latest(REGISTRY)
    return counters + generate_latest(gauges)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics; with METRICS_TOKEN set, only for ``Authorization: Bearer <token>``."""
    if settings.METRICS_TOKEN and request.headers.get("Authorization") != f"Bearer {settings.METRICS_TOKEN}":
        return HttpResponse("metrics need the scrape token\n", status=401, content_type="text/plain")
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
