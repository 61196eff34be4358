"""The UID picker: the subnet's neurons searched by uid, the operator's
description and tags, or hotkey, each with how it has been answering lately."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from endpoint.core.models import EndpointConfig, Neuron
from logs.stats import miner_stats

STATS_WINDOW = timedelta(hours=24)
MAX_RESULTS = 50
# A shorter piece of a 48-character hotkey would turn up in random hotkeys
# (and make "uid 3" or "code" match miners by chance).
MIN_HOTKEY_CHARS = 5


def _haystack(neuron: Neuron) -> str:
    tags = " ".join(str(t) for t in neuron.tags) if isinstance(neuron.tags, list) else ""
    return f"uid {neuron.uid} {neuron.description} {tags}".lower()


def _matches(neuron: Neuron, words: list[str]) -> bool:
    haystack, hotkey = _haystack(neuron), neuron.hotkey.lower()
    return all(w in haystack or (len(w) >= MIN_HOTKEY_CHARS and w in hotkey) for w in words)


def search_neurons(query: str, *, limit: int = MAX_RESULTS) -> list[dict[str, Any]]:
    """Neurons of the configured subnet whose uid, description or tags (or,
    for a word of 5 characters or more, hotkey, in any case) hold every word
    of ``query`` (all of them for an empty query), serving ones first, with
    their success rate and median latency over the last day (calls cancelled
    because another miner answered first are counted in ``requests`` and ``cancelled``, not in the rate)."""
    words = (query or "").lower().split()
    netuid = EndpointConfig.load().netuid
    # A subnet has at most a few thousand neurons: matching in Python keeps
    # substring search over the JSON tags simple on any database.
    neurons = [n for n in Neuron.objects.filter(netuid=netuid) if _matches(n, words)]
    neurons.sort(key=lambda n: (not n.serving, n.uid))
    neurons = neurons[:limit]
    stats = miner_stats(timezone.now() - STATS_WINDOW) if neurons else {}
    found = []
    for n in neurons:
        figures = stats.get(n.hotkey, {})
        found.append(
            {
                "uid": n.uid,
                "hotkey": n.hotkey,
                "description": n.description,
                "tags": [str(t) for t in n.tags] if isinstance(n.tags, list) else [],
                "serving": n.serving,
                "requests": figures.get("requests", 0),
                "cancelled": figures.get("cancelled", 0),
                "success_rate": figures.get("success_rate"),
                "p50_ms": figures.get("p50_ms"),
            }
        )
    return found
