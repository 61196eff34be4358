"""An in-memory chain for the bittensor SDK's ``Client(substrate=...)``, as
``tests/endpoint/network/chain_fixture.py`` is for the metagraph.

It answers what ``billing.tao_chain`` asks through the SDK (the head and
finalized block, ``client.block_info(n)``, ``System.Events`` at a block, and
the token-symbol map read on connect) with records shaped like the
transport's decoded answers: a ``chain_getBlock`` header and extrinsics, and
``System.Events`` as ``{"phase", "extrinsic_idx", "event_index", "event":
{"module_id", "event_id", "attributes"}, "topics"}`` (account ids as the
runtime's 32 bytes, 0x-hex). No chain can be reached from the test machines,
so these are not a live node's bytes: they are the SDK's decoded shapes,
decoded further by the SDK's own Client (block_info, timestamps, Balance).
"""

from __future__ import annotations

from typing import Any

from bittensor.balance import Balance
from bittensor.sp_core import ss58_decode

BLOCK_MS = 12_000
GENESIS_MS = 1_700_000_000_000


def account(ss58: str) -> str:
    return "0x" + bytes(ss58_decode(ss58)).hex()


class FakeChain:
    """A chain at block ``head``; ``transfer`` puts a signed
    ``Balances.transfer_keep_alive`` (and its events) in a block."""

    def __init__(self, head: int = 1000, finalized: int | None = None):
        self.head = head
        self.finalized = head if finalized is None else finalized
        self.extrinsics: dict[int, list[dict]] = {}
        self.events: dict[int, list[dict]] = {}
        self.forks: dict[int, str] = {}  # block -> replaced hash
        self.token_symbols: dict[int, str] = {}
        self.reads: list[int] = []

    # what tests write ----------------------------------------------------------------

    def transfer(self, block: int, sender: str, recipient: str, rao: int, *, fails: bool = False) -> int:
        extrinsics, events = self._block(block)
        index = len(extrinsics)
        extrinsics.append(
            {
                "address": account(sender),
                "signature": {"Sr25519": "0x" + "11" * 64},
                "call": {
                    "call_index": "0x0503",
                    "call_function": "transfer_keep_alive",
                    "call_module": "Balances",
                    "call_args": [
                        {"name": "dest", "type": "AccountIdLookupOf<T>", "value": {"Id": account(recipient)}},
                        {"name": "value", "type": "Balance", "value": rao},
                    ],
                },
            }
        )
        fee = 124_000
        records = [self._event(index, "Balances", "Withdraw", {"who": account(sender), "amount": fee})]
        if fails:
            error = {"Module": {"index": 5, "error": "0x02000000"}}
            records.append(self._event(index, "System", "ExtrinsicFailed", {"dispatch_error": error}))
        else:
            transfer = {"from": account(sender), "to": account(recipient), "amount": rao}
            records.append(self._event(index, "Balances", "Transfer", transfer))
            records.append(self._event(index, "TransactionPayment", "TransactionFeePaid", {"who": account(sender)}))
            records.append(self._event(index, "System", "ExtrinsicSuccess", {"dispatch_info": {"class": "Normal"}}))
        for record in records:
            record["event_index"] = len(events)
            events.append(record)
        return index

    def advance(self, blocks: int, *, finalized_lag: int = 0) -> None:
        self.head += blocks
        self.finalized = self.head - finalized_lag

    def fork(self, block: int) -> None:
        """Replace ``block`` by an empty one with another hash (a reorg)."""
        self.extrinsics.pop(block, None)
        self.events.pop(block, None)
        self.forks[block] = f"0x{'f' * 56}{block:08x}"

    def _block(self, block: int) -> tuple[list[dict], list[dict]]:
        if block not in self.extrinsics:
            stamp = {"name": "now", "type": "Moment", "value": GENESIS_MS + block * BLOCK_MS}
            inherent = {"call": {"call_module": "Timestamp", "call_function": "set", "call_args": [stamp]}}
            self.extrinsics[block] = [inherent]
            success = self._event(0, "System", "ExtrinsicSuccess", {"dispatch_info": {"class": "Mandatory"}})
            self.events[block] = [{**success, "event_index": 0}]
        return self.extrinsics[block], self.events[block]

    @staticmethod
    def _event(index: int, module: str, name: str, attributes: dict) -> dict:
        return {
            "phase": "ApplyExtrinsic",
            "extrinsic_idx": index,
            "event": {"module_id": module, "event_id": name, "attributes": attributes},
            "topics": [],
        }

    # the Substrate contract, as far as the scan uses it ----------------------------------

    def balance(self, rao: int, netuid: int = 0) -> Balance:
        return Balance(int(rao), netuid, None)

    async def connect(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def block_number(self) -> int:
        return self.head

    async def finalized_block_number(self) -> int:
        return self.finalized

    async def block_hash(self, block: int | None = None) -> str:
        block = self.head if block is None else block
        return self.forks.get(block, f"0x{block:064x}")

    async def get_block(self, block_number: int | None = None, block_hash: str | None = None) -> dict | None:
        number = self.head if block_number is None else block_number
        if number > self.head:
            return None
        self.reads.append(number)
        extrinsics, _ = self._block(number)
        header = {
            "parentHash": await self.block_hash(number - 1),
            "number": number,
            "stateRoot": "0x" + "22" * 32,
            "extrinsicsRoot": "0x" + "33" * 32,
            "digest": {"logs": []},
            "hash": await self.block_hash(number),
        }
        return {"header": header, "extrinsics": list(extrinsics)}

    async def query(self, module: str, storage_function: str, params=None, block_hash: str | None = None) -> Any:
        if (module, storage_function) != ("System", "Events"):
            raise NotImplementedError(f"FakeChain has no storage {module}.{storage_function}")
        forked = {value: block for block, value in self.forks.items()}
        number = forked[block_hash] if block_hash in forked else int(block_hash, 16)
        return list(self._block(number)[1])

    async def query_map(self, module: str, storage_function: str, params=None, block_hash=None) -> list:
        if (module, storage_function) == ("SubtensorModule", "TokenSymbol"):
            return []
        raise NotImplementedError(f"FakeChain has no storage map {module}.{storage_function}")
