"""Local miners for the benchmarks, in their own process, each with its own
behaviour (``manage.py localnet`` gives all of them the same one).

    python -m tests.bench.miners SPEC.json OUT.json

SPEC.json is a list, one object per miner: ``latency``, ``jitter`` (seconds)
and ``auth`` (false: unsigned requests are answered too, for LiteLLM). The
snapshot (DESIGN §6) is written to OUT.json once every miner listens; the
process runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from endpoint.network.localnet import LocalSubnet, MinerBehaviour, new_event_loop


def subnet_from(spec: list[dict]) -> LocalSubnet:
    subnet = LocalSubnet(len(spec))
    for uid, miner in enumerate(spec):
        subnet.miner(uid).behaviour = MinerBehaviour(
            latency=miner.get("latency", 0.0), jitter=miner.get("jitter", 0.0), require_auth=miner.get("auth", True)
        )
    return subnet


async def serve(subnet: LocalSubnet, out: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await subnet.serve(until=stop, on_ready=lambda ready: ready.write_snapshot(out))


def main() -> None:
    spec_path, out = Path(sys.argv[1]), Path(sys.argv[2])
    subnet = subnet_from(json.loads(spec_path.read_text()))
    out.unlink(missing_ok=True)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(subnet, out))


if __name__ == "__main__":
    main()
