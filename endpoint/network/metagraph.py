"""Each subnet's metagraph: read from its source (the chain or a JSON snapshot),
stored as Neuron rows, and served to the hot path as an in-memory Directory.

Writes go through ``sync_subnets`` (the `metagraph sync` command, the Celery
beat task) and ``sync_metagraph`` for the chat subnet (start-up, the admin).
Reads on the hot path go through ``adirectory()`` (the chat subnet), which
costs no query and no thread hop while the process's copy is fresh; the other
subnets have their own copies (``subnet_directory``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from endpoint.core.db import cached_or_loaded
from endpoint.core.errors import MetagraphSourceError
from endpoint.core.models import CHAT_SUBNET, EndpointConfig, Neuron, Subnet
from endpoint.core.subnets import ensure_chat_subnet

log = logging.getLogger(__name__)

T = TypeVar("T")

# Upper bound on one chain read: the SDK rotates through fallback endpoints on
# its own, and a periodic sync must fail visibly rather than hang a worker.
CHAIN_READ_TIMEOUT_SECONDS = 120.0

# Neuron fields that mirror the metagraph; description/tags are the operator's.
CHAIN_FIELDS = ("hotkey", "coldkey", "axon", "incentive", "trust", "stake", "validator_permit", "active")


@dataclass(frozen=True)
class NeuronInfo:
    uid: int
    hotkey: str
    coldkey: str = ""
    axon: str = ""
    incentive: float = 0.0
    trust: float = 0.0
    stake: float = 0.0
    validator_permit: bool = False
    active: bool = True

    @property
    def serving(self) -> bool:
        return self.active and bool(self.axon)


@dataclass(frozen=True, eq=False)
class Directory:
    """What the hot path knows about the subnet; never mutated once built."""

    network: str
    netuid: int
    block: int | None
    synced_at: datetime | None
    by_uid: dict[int, NeuronInfo] = field(default_factory=dict)
    ranked: tuple[NeuronInfo, ...] = ()

    @classmethod
    def build(
        cls,
        *,
        network: str,
        netuid: int,
        block: int | None,
        synced_at: datetime | None,
        neurons: Iterable[NeuronInfo],
    ) -> Directory:
        by_uid = {n.uid: n for n in neurons}
        return cls(network, netuid, block, synced_at, by_uid, rank_serving(by_uid.values()))

    def top_n(self, n: int) -> list[NeuronInfo]:
        return list(self.ranked[: max(n, 0)])

    def get(self, uid: int) -> NeuronInfo | None:
        return self.by_uid.get(uid)

    @property
    def empty(self) -> bool:
        return not self.by_uid


def rank_serving(neurons: Iterable[NeuronInfo]) -> tuple[NeuronInfo, ...]:
    """Serving neurons, best incentive first; equal incentive goes to the lower
    uid so that ``top_n`` is deterministic."""
    return tuple(sorted((n for n in neurons if n.serving), key=lambda n: (-n.incentive, n.uid)))


# --- Snapshot format (DESIGN §6) ---------------------------------------------

# Optional neuron fields and their defaults; uid and hotkey are required.
NEURON_DEFAULTS: dict[str, Any] = {
    "coldkey": "",
    "axon": "",
    "incentive": 0.0,
    "trust": 0.0,
    "stake": 0.0,
    "validator_permit": False,
    "active": True,
}
KEY_MAX_LENGTH = Neuron._meta.get_field("hotkey").max_length
AXON_MAX_LENGTH = Neuron._meta.get_field("axon").max_length


def load_snapshot(path: str | Path) -> dict:
    """Read and validate a JSON metagraph snapshot file."""
    if not str(path).strip():
        raise MetagraphSourceError("no metagraph file is configured (manage.py config set metagraph_file PATH)")
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MetagraphSourceError(f"metagraph file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MetagraphSourceError(f"metagraph file {path} cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MetagraphSourceError(f"metagraph file {path} is not valid JSON: {exc}") from None
    return validate_snapshot(data, source=f"metagraph file {path}")


def validate_snapshot(data: Any, *, source: str = "metagraph snapshot") -> dict:
    """A normalized copy of ``data``, or a MetagraphSourceError naming the first problem."""

    def fail(problem: str) -> MetagraphSourceError:
        return MetagraphSourceError(f"{source}: {problem}")

    if not isinstance(data, dict):
        raise fail("expected a JSON object with network, netuid, block and neurons")
    missing = [name for name in ("network", "netuid", "block", "neurons") if name not in data]
    if missing:
        raise fail(f"missing field(s): {', '.join(missing)}")
    network = data["network"]
    if not isinstance(network, str) or not network.strip():
        raise fail(f"network must be a non-empty string, got {network!r}")
    netuid = _whole(data["netuid"], "netuid", fail)
    block = _whole(data["block"], "block", fail)
    if not isinstance(data["neurons"], list):
        raise fail("neurons must be a list")
    neurons = [_validated_neuron(raw, f"neurons[{i}]", fail) for i, raw in enumerate(data["neurons"])]
    seen: set[int] = set()
    for neuron in neurons:
        if neuron["uid"] in seen:
            raise fail(f"duplicate uid {neuron['uid']}")
        seen.add(neuron["uid"])
    return {"network": network.strip(), "netuid": netuid, "block": block, "neurons": neurons}


def _validated_neuron(raw: Any, where: str, fail: Callable[[str], Exception]) -> dict:
    if not isinstance(raw, dict):
        raise fail(f"{where} must be an object")
    missing = [name for name in ("uid", "hotkey") if name not in raw]
    if missing:
        raise fail(f"{where} is missing field(s): {', '.join(missing)}")
    values = {**NEURON_DEFAULTS, **{k: v for k, v in raw.items() if k in NEURON_DEFAULTS}}
    if values["axon"] is None:  # how the chain says "nothing served"
        values["axon"] = ""
    neuron = {"uid": _whole(raw["uid"], f"{where}.uid", fail)}
    neuron["hotkey"] = _text(raw["hotkey"], f"{where}.hotkey", fail, required=True, limit=KEY_MAX_LENGTH)
    neuron["coldkey"] = _text(values["coldkey"], f"{where}.coldkey", fail, limit=KEY_MAX_LENGTH)
    neuron["axon"] = _axon(values["axon"], f"{where}.axon", fail)
    for name in ("incentive", "trust", "stake"):
        neuron[name] = _number(values[name], f"{where}.{name}", fail)
    for name in ("validator_permit", "active"):
        if not isinstance(values[name], bool):
            raise fail(f"{where}.{name} must be true or false, got {values[name]!r}")
        neuron[name] = values[name]
    return neuron


def _whole(value: Any, where: str, fail: Callable[[str], Exception]) -> int:
    # bool is an int in Python, but `"uid": true` is a mistake, not uid 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise fail(f"{where} must be a whole number ≥ 0, got {value!r}")
    return value


def _number(value: Any, where: str, fail: Callable[[str], Exception]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(f"{where} must be a number, got {value!r}")
    return float(value)


def _text(value: Any, where: str, fail: Callable[[str], Exception], *, limit: int, required: bool = False) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise fail(f"{where} must be a {'non-empty ' if required else ''}string, got {value!r}")
    if len(value) > limit:
        raise fail(f"{where} is longer than {limit} characters")
    return value.strip()


def _axon(value: Any, where: str, fail: Callable[[str], Exception]) -> str:
    axon = _text(value, where, fail, limit=AXON_MAX_LENGTH)
    if not axon:
        return ""
    host, _, port = axon.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise fail(f"{where} must be 'ip:port' or empty, got {value!r}")
    return axon


# --- Chain source ------------------------------------------------------------


async def fetch_chain_snapshot(network: str, netuid: int, *, substrate: Any = None) -> dict:
    """The subnet's metagraph read from the chain, in the snapshot format.

    ``substrate`` replaces the SDK's RPC backend (tests use an in-memory one).
    """
    from bittensor.client import Client
    from bittensor.result import BittensorError

    try:
        client = Client(network, substrate=substrate)
    except ValueError as exc:  # an unknown network name
        raise MetagraphSourceError(str(exc)) from None
    try:
        async with asyncio.timeout(CHAIN_READ_TIMEOUT_SECONDS):
            await client.connect()
            graph = await client.subnets.metagraph(netuid, commitments=False)
    except TimeoutError:
        raise MetagraphSourceError(
            f"reading the metagraph of netuid {netuid} from {network} took over {CHAIN_READ_TIMEOUT_SECONDS:.0f}s"
        ) from None
    except (BittensorError, OSError) as exc:
        raise MetagraphSourceError(f"could not read the metagraph of netuid {netuid} from {network}: {exc}") from exc
    finally:
        # A failing close must not hide what the read itself found.
        with contextlib.suppress(Exception):
            await client.close()
    if graph is None:
        raise MetagraphSourceError(f"subnet {netuid} does not exist on {network}")
    return snapshot_from_metagraph(client.network, graph)


def snapshot_from_metagraph(network: str, graph: Any) -> dict:
    """A ``bittensor.metagraph.Metagraph`` in the snapshot format."""
    return {
        "network": network,
        "netuid": graph.netuid,
        "block": graph.block,
        "neurons": [
            {
                "uid": n.uid,
                "hotkey": n.hotkey,
                "coldkey": n.coldkey,
                "axon": n.axon or "",
                "incentive": float(n.incentive),
                "trust": float(n.trust),
                # The subnet's own units; `.tao` refuses alpha-tagged balances.
                "stake": float(n.total_stake.amount),
                "validator_permit": bool(n.validator_permit),
                "active": bool(n.active),
            }
            for n in graph.neurons
        ],
    }


def _run_coroutine(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also when this thread
    already runs an event loop (asyncio.run refuses to nest)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="metagraph") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def read_configured_source(config: EndpointConfig | Subnet) -> dict:
    """The metagraph of the config's (or subnet's) network, netuid and source."""
    if config.metagraph_source == "file":
        return load_snapshot(config.metagraph_file)
    return _run_coroutine(lambda: fetch_chain_snapshot(config.network, config.netuid))


# --- Sync into Neuron rows ---------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    created: int
    updated: int
    deactivated: int
    block: int
    network: str
    netuid: int
    subnet: str = CHAT_SUBNET

    @property
    def neurons(self) -> int:
        return self.created + self.updated


def sync_metagraph(*, snapshot: dict | None = None) -> SyncResult:
    """Bring the Neuron rows of the chat subnet (the configured netuid) in line
    with the metagraph source (or with ``snapshot``), then refresh this
    process's Directory."""
    config = EndpointConfig.load()
    return _sync(config, CHAT_SUBNET, snapshot, "manage.py config set netuid {netuid}")


def sync_subnet(subnet: Subnet, *, snapshot: dict | None = None) -> SyncResult:
    """``sync_metagraph`` for any subnet: its own source, netuid and status."""
    if subnet.is_chat_subnet:
        return sync_metagraph(snapshot=snapshot)  # its settings are the config's
    return _sync(subnet, subnet.slug, snapshot, f"manage.py subnets edit {subnet.slug} --netuid {{netuid}}")


def _sync(source: EndpointConfig | Subnet, slug: str, snapshot: dict | None, fix: str) -> SyncResult:
    if snapshot is None:
        snapshot = read_configured_source(source)
    else:
        snapshot = validate_snapshot(snapshot)
    if snapshot["netuid"] != source.netuid:
        # Rows for another netuid would never be served: say so instead of
        # reporting a successful sync of a subnet nobody reads.
        serves = "the endpoint serves" if slug == CHAT_SUBNET else f"the subnet {slug!r} is"
        raise MetagraphSourceError(
            f"the metagraph is for netuid {snapshot['netuid']} but {serves} netuid {source.netuid} "
            f"({fix.format(netuid=snapshot['netuid'])})"
        )
    status = {
        "metagraph_synced_at": timezone.now(),
        "metagraph_block": snapshot["block"],
        "metagraph_network": snapshot["network"],
    }
    with transaction.atomic():
        created, updated, deactivated = _write_neurons(snapshot["netuid"], snapshot["neurons"])
        if slug == CHAT_SUBNET:
            EndpointConfig.objects.filter(pk=source.pk).update(**status)
        Subnet.objects.filter(slug=slug).update(**status)
    result = SyncResult(created, updated, deactivated, snapshot["block"], snapshot["network"], snapshot["netuid"], slug)
    log.info(
        "metagraph synced: subnet=%s network=%s netuid=%s block=%s created=%s updated=%s deactivated=%s",
        slug,
        result.network,
        result.netuid,
        result.block,
        result.created,
        result.updated,
        result.deactivated,
    )
    if slug == CHAT_SUBNET:
        refresh_directory()
    else:
        _subnet_directories.pop(slug, None)
    return result


@dataclass(frozen=True)
class SubnetSync:
    """One subnet's part of a sync of them all: its result, or why it failed."""

    subnet: Subnet
    result: SyncResult | None = None
    error: Exception | None = None


# What a sync that could not read its source raises; anything else is a bug.
SYNC_FAILURES = (MetagraphSourceError, OSError)


def sync_subnets(*, due_only: bool = False) -> list[SubnetSync]:
    """Sync every enabled subnet, the chat subnet first; one whose source
    fails is reported and the others are still synced. ``due_only`` skips
    the subnets synced less than ``metagraph_sync_seconds`` ago (beat's tick)."""
    ensure_chat_subnet()
    config = EndpointConfig.load()
    subnets = sorted(Subnet.objects.filter(enabled=True), key=lambda s: (not s.is_chat_subnet, s.netuid))
    outcomes = []
    for subnet in subnets:
        # The chat subnet's status is the config's, as before subnets existed.
        synced = config.metagraph_synced_at if subnet.is_chat_subnet else subnet.metagraph_synced_at
        if due_only and synced is not None:
            if (timezone.now() - synced).total_seconds() < config.metagraph_sync_seconds:
                continue
        try:
            outcomes.append(SubnetSync(subnet, result=sync_subnet(subnet)))
        except SYNC_FAILURES as exc:
            log.warning("metagraph sync of subnet %s failed: %s", subnet.slug, exc)
            outcomes.append(SubnetSync(subnet, error=exc))
    return outcomes


def _write_neurons(netuid: int, neurons: list[dict]) -> tuple[int, int, int]:
    """Upsert the snapshot's neurons with a fixed number of queries, whatever
    the subnet's size. Returns (created, updated, deactivated)."""
    # Locked so two syncs (beat task and an operator's command) cannot interleave.
    existing = {row.uid: row for row in Neuron.objects.select_for_update().filter(netuid=netuid)}
    now = timezone.now()
    to_create: list[Neuron] = []
    to_update: list[Neuron] = []
    for values in neurons:
        row = existing.get(values["uid"])
        if row is None:
            to_create.append(Neuron(netuid=netuid, last_update=now, **values))
            continue
        if row.hotkey != values["hotkey"]:
            # A new miner took the slot: the operator's notes were about the old one.
            row.description, row.tags = "", []
        for name in CHAIN_FIELDS:
            setattr(row, name, values[name])
        row.last_update = now
        to_update.append(row)
    Neuron.objects.bulk_create(to_create, batch_size=500)
    Neuron.objects.bulk_update(to_update, [*CHAIN_FIELDS, "description", "tags", "last_update"], batch_size=500)
    deactivated = (
        Neuron.objects.filter(netuid=netuid, active=True)
        .exclude(uid__in=[n["uid"] for n in neurons])
        .update(active=False, last_update=now)
    )
    return len(to_create), len(to_update), deactivated


# --- The in-memory Directory -------------------------------------------------

_cached: tuple[float, Directory] | None = None
_cache_lock = threading.Lock()


def load_directory(subnet: Subnet | None = None) -> Directory:
    """A Directory built from the database now (two queries): the chat
    subnet's, or ``subnet``'s."""
    source = EndpointConfig.load() if subnet is None or subnet.is_chat_subnet else subnet
    rows = Neuron.objects.filter(netuid=source.netuid).values("uid", *CHAIN_FIELDS)
    return Directory.build(
        network=source.metagraph_network or source.network,
        netuid=source.netuid,
        block=source.metagraph_block,
        synced_at=source.metagraph_synced_at,
        neurons=[NeuronInfo(**row) for row in rows],
    )


def refresh_directory() -> Directory:
    global _cached
    fresh = load_directory()
    with _cache_lock:
        _cached = (time.monotonic(), fresh)
    return fresh


def _fresh_cached() -> Directory | None:
    cached = _cached
    if cached is not None and time.monotonic() - cached[0] <= settings.METAGRAPH_CACHE_SECONDS:
        return cached[1]
    return None


def directory() -> Directory:
    """This process's Directory, reloaded when older than METAGRAPH_CACHE_SECONDS."""
    return _fresh_cached() or refresh_directory()


async def adirectory() -> Directory:
    """``directory()`` for async code, without a DB round trip on the request
    path: past its cache window the copy is still served for as long again
    while it is reloaded in the background."""
    window = settings.METAGRAPH_CACHE_SECONDS
    return await cached_or_loaded(_cached, window, "metagraph directory", refresh_directory, directory)


# The other subnets' copies, by slug: nothing reads them on the chat path.
_subnet_directories: dict[str, tuple[float, Directory]] = {}


def subnet_directory(subnet: Subnet) -> Directory:
    """``directory()`` for any subnet, each with its own copy."""
    if subnet.is_chat_subnet:
        return directory()
    cached = _subnet_directories.get(subnet.slug)
    if cached is not None and time.monotonic() - cached[0] <= settings.METAGRAPH_CACHE_SECONDS:
        return cached[1]
    return _reload_subnet(subnet)


def _reload_subnet(subnet: Subnet) -> Directory:
    fresh = load_directory(subnet)
    _subnet_directories[subnet.slug] = (time.monotonic(), fresh)
    return fresh


async def asubnet_directory(subnet: Subnet) -> Directory:
    """``adirectory()`` for any subnet: its copy, reloaded in the background once old."""
    if subnet.is_chat_subnet:
        return await adirectory()
    reload = functools.partial(_reload_subnet, subnet)
    cached = _subnet_directories.get(subnet.slug)
    window = settings.METAGRAPH_CACHE_SECONDS
    return await cached_or_loaded(cached, window, f"metagraph directory of {subnet.slug}", reload, reload)


def forget_directory() -> None:
    global _cached
    with _cache_lock:
        _cached = None
        _subnet_directories.clear()
