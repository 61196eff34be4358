"""`manage.py localnet`: a local subnet of signed miners, in the foreground."""

from __future__ import annotations

import asyncio
import signal

from endpoint.management.base import OperatorCommand, OperatorError
from endpoint.network.localnet import LocalSubnet, MinerBehaviour


class Command(OperatorCommand):
    help = "Start N local miners (btauth/1, OpenAI chat completions) and write the metagraph snapshot."

    def add_arguments(self, parser):
        parser.add_argument("--miners", type=int, default=8)
        parser.add_argument("--port", type=int, default=9100, help="First miner's port; 0 for any free ports.")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--netuid", type=int, default=1)
        parser.add_argument("--out", default="var/metagraph.json", help="Where to write the snapshot.")
        parser.add_argument("--latency", type=float, default=0.0)
        parser.add_argument("--jitter", type=float, default=0.0)
        parser.add_argument("--failure-rate", type=float, default=0.0)
        parser.add_argument("--upstream", default=None, help="OpenAI-compatible base URL to forward prompts to.")

    def handle(self, *args, **opts):
        if opts["miners"] < 1:
            raise OperatorError("--miners must be at least 1")
        if not 0 <= opts["failure_rate"] <= 1:
            raise OperatorError("--failure-rate must be between 0 and 1")
        behaviour = MinerBehaviour(
            latency=opts["latency"], jitter=opts["jitter"], failure_rate=opts["failure_rate"], upstream=opts["upstream"]
        )
        subnet = LocalSubnet(
            opts["miners"], host=opts["host"], base_port=opts["port"], behaviour=behaviour, netuid=opts["netuid"]
        )
        asyncio.run(self._serve(subnet, opts["out"]))

    async def _serve(self, subnet: LocalSubnet, out: str) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await subnet.start_servers()
        try:
            path = subnet.write_snapshot(out)
            for miner in subnet.miners:
                self.stdout.write(f"uid {miner.uid:>3}  {miner.axon:<22} {miner.hotkey}")
            self.stdout.write(f"snapshot: {path}")
            self.stdout.flush()
            await stop.wait()
        finally:
            await subnet.stop_servers()
