"""An in-memory chain for the bittensor SDK's ``Client(substrate=...)``.

It implements only what ``Client.connect()`` and ``client.subnets.metagraph()``
use: the block head, block hashes, the ``get_metagraph`` runtime call and the
token-symbol storage map read on connect. The records it serves are shaped
like the runtime's own ``SubnetInfoRuntimeApi.get_metagraph`` answer, which
``bittensor.metagraph._build`` decodes.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from bittensor.balance import Balance

RAO_PER_TAO = 10**9
U16_MAX = 65535


def u16(fraction: float) -> int:
    """A 0..1 score as the runtime sends it (PerU16)."""
    return round(fraction * U16_MAX)


def axon_record(address: str | None) -> dict:
    if address is None:  # a neuron that never served: the chain keeps zeros
        return {"block": 0, "version": 0, "ip": 0, "port": 0, "ip_type": 4, "protocol": 4}
    host, port = address.rsplit(":", 1)
    return {"block": 100, "version": 1, "ip": int(ipaddress.IPv4Address(host)), "port": int(port), "ip_type": 4}


def metagraph_record(netuid: int, block: int, neurons: list[dict]) -> dict:
    """A raw ``get_metagraph`` record. Each neuron dict has hotkey, coldkey,
    axon ("ip:port" or None), incentive and trust (0..1), stake (TAO),
    validator_permit and active."""

    def column(name: str, convert=lambda v: v) -> list:
        return [convert(n[name]) for n in neurons]

    count = len(neurons)
    return {
        "netuid": netuid,
        "name": list(b"fake subnet"),
        "symbol": list("β".encode()),
        "identity": None,
        "network_registered_at": 10,
        "owner_hotkey": "5OwnerHotkey",
        "owner_coldkey": "5OwnerColdkey",
        "block": block,
        "tempo": 360,
        "last_step": block - 7,
        "blocks_since_last_step": 7,
        "subnet_emission": 0,
        "alpha_in": 10 * RAO_PER_TAO,
        "alpha_out": 0,
        "tao_in": 5 * RAO_PER_TAO,
        "moving_price": {"bits": 2**31},
        "num_uids": count,
        "max_uids": 256,
        "hotkeys": column("hotkey"),
        "coldkeys": column("coldkey"),
        "identities": [None] * count,
        "axons": column("axon", axon_record),
        "active": column("active"),
        "validator_permit": column("validator_permit"),
        "pruning_score": [0] * count,
        "last_update": [block - 1] * count,
        "emission": [0] * count,
        "dividends": [0] * count,
        "incentives": column("incentive", u16),
        "consensus": [0] * count,
        "trust": column("trust", u16),
        "rank": [0] * count,
        "block_at_registration": [10] * count,
        "alpha_stake": column("stake", lambda tao: int(tao * RAO_PER_TAO)),
        "tao_stake": [0] * count,
        "total_stake": column("stake", lambda tao: int(tao * RAO_PER_TAO)),
    }


class FakeSubstrate:
    """The chain-access backend the SDK's Client talks to, holding one
    metagraph record per netuid; a netuid without one is a subnet that does
    not exist (the runtime answers None)."""

    def __init__(self, block: int = 1000, metagraphs: dict[int, dict] | None = None):
        self.head = block
        self.metagraphs = dict(metagraphs or {})
        self.token_symbols: dict[int, str] = {}
        self.connected = False
        self.closed = False
        self.runtime_calls: list[tuple[str, str, list, str | None]] = []

    def balance(self, rao: int, netuid: int = 0) -> Balance:
        return Balance(int(rao), netuid, self.token_symbols.get(netuid) if netuid else None)

    async def connect(self) -> None:
        self.connected = True

    async def close(self) -> None:
        self.closed = True

    async def block_number(self) -> int:
        return self.head

    async def block_hash(self, block: int | None = None) -> str:
        return f"0x{(self.head if block is None else block):064x}"

    async def query_map(self, module: str, storage_function: str, params=None, block_hash=None) -> list:
        if (module, storage_function) == ("SubtensorModule", "TokenSymbol"):
            return [(netuid, list(b"\xce\xb2")) for netuid in self.metagraphs]
        raise NotImplementedError(f"FakeSubstrate has no storage map {module}.{storage_function}")

    async def runtime_call(self, api: str, method: str, params: list, block_hash: str | None = None) -> Any:
        self.runtime_calls.append((api, method, params, block_hash))
        if (api, method) != ("SubnetInfoRuntimeApi", "get_metagraph"):
            raise NotImplementedError(f"FakeSubstrate has no runtime call {api}.{method}")
        return self.metagraphs.get(params[0])
