"""All this endpoint asks the chain about TAO deposits, through the bittensor
SDK: the head and finalized block, and the ``Balances.Transfer`` events of a
range of blocks. Nothing here signs or holds a private key; deriving the
deposit addresses is ``deposits.py``'s, from the seed, locally."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from endpoint.core.errors import ServiceUnavailable

T = TypeVar("T")

# Upper bound on one scan's chain reads: a stuck node must fail the beat
# task visibly, not hang a worker.
CHAIN_READ_TIMEOUT_SECONDS = 120.0
EVENTS = ("System", "Events")


class ChainUnreachable(ServiceUnavailable):
    code = "ChainUnreachable"
    detail = "The chain could not be read."


@dataclass(frozen=True)
class Transfer:
    block_number: int
    block_hash: str
    extrinsic_index: int
    event_index: int
    sender: str
    recipient: str
    amount_rao: int


@dataclass(frozen=True)
class ChainRead:
    """What one scan saw: the chain's head and finalized block, and the
    transfers of blocks ``first``..``last`` (both included; none read when
    ``last < first``)."""

    head: int
    finalized: int
    first: int
    last: int
    transfers: list[Transfer] = field(default_factory=list)


def _account(value: Any) -> str:
    """An AccountId as the SDK decodes it: ss58 already, or 32 bytes / 0x-hex."""
    from bittensor.sp_core import ss58_encode

    if isinstance(value, str) and not value.startswith("0x"):
        return value
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    return ss58_encode(raw)


def transfers_in(number: int, block_hash: str, events: list) -> list[Transfer]:
    """The successful ``Balances.Transfer`` events of one block's decoded events."""
    succeeded, found = set(), []
    for position, entry in enumerate(events):
        record = getattr(entry, "value", entry)
        event = record.get("event") or {}
        kind, index = (event.get("module_id"), event.get("event_id")), record.get("extrinsic_idx")
        if kind == ("System", "ExtrinsicSuccess") and index is not None:
            succeeded.add(int(index))
        elif kind == ("Balances", "Transfer") and index is not None:
            attributes = event.get("attributes") or {}
            if isinstance(attributes, (list, tuple)):  # older runtimes: unnamed (from, to, amount)
                attributes = dict(zip(("from", "to", "amount"), attributes, strict=False))
            found.append(
                Transfer(
                    block_number=number,
                    block_hash=block_hash,
                    extrinsic_index=int(index),
                    event_index=int(record.get("event_index", position)),
                    sender=_account(attributes["from"]),
                    recipient=_account(attributes["to"]),
                    amount_rao=int(attributes["amount"]),
                )
            )
    # A transfer's event is only final with its extrinsic's success.
    return [t for t in found if t.extrinsic_index in succeeded]


async def read_chain(network: str, after: int | None, lookback: int, max_blocks: int, *, substrate=None) -> ChainRead:
    """The transfers of the blocks after ``after`` up to the head (at most
    ``max_blocks`` of them); with no ``after``, from ``lookback`` blocks below
    the finalized one. ``substrate`` replaces the SDK's RPC backend (tests feed
    it recorded answers)."""
    from bittensor.client import Client
    from bittensor.result import BittensorError

    try:
        client = Client(network, substrate=substrate)
    except ValueError as exc:  # an unknown network name
        raise ChainUnreachable(str(exc)) from None
    try:
        async with asyncio.timeout(CHAIN_READ_TIMEOUT_SECONDS):
            await client.connect()
            head, finalized = await client.block(), await client.finalized_block()
            first = (max(0, finalized - lookback) if after is None else after) + 1
            last = min(head, first + max_blocks - 1)
            transfers = []
            for number in range(first, last + 1):
                info = await client.block_info(number)
                if info is None:  # the node doesn't have it (yet): stop there, read it next time
                    last = number - 1
                    break
                events = await client.query(EVENTS, block=number)
                transfers += transfers_in(number, info.hash, list(events or []))
    except TimeoutError:
        raise ChainUnreachable(f"reading {network} took over {CHAIN_READ_TIMEOUT_SECONDS:.0f}s") from None
    except (BittensorError, OSError) as exc:
        raise ChainUnreachable(f"could not read {network}: {exc}") from exc
    finally:
        with contextlib.suppress(Exception):
            await client.close()
    return ChainRead(head=head, finalized=finalized, first=first, last=last, transfers=transfers)


def run(make: Coroutine[Any, Any, T]) -> T:
    """Run a chain read from sync code (a command, a Celery task), also on a
    thread that already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tao-chain") as pool:
        return pool.submit(asyncio.run, make).result()
