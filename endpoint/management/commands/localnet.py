"""`manage.py localnet`: a local subnet of signed miners, in the foreground,
until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from django.conf import settings

from endpoint.core.commands import OperatorCommand
from endpoint.core.errors import OperatorError
from endpoint.network.localnet import KIND_PATHS, LocalSubnet, MinerBehaviour, new_event_loop


class Command(OperatorCommand):
    help = (
        "Start N local miners (btauth/1; OpenAI chat completions, or images, speech, transcriptions "
        "or embeddings with --kind) and write the metagraph snapshot."
    )

    def add_arguments(self, parser):
        parser.add_argument("--miners", type=int, default=8, help="How many miners (uids 0..N-1).")
        parser.add_argument("--port", type=int, default=9100, help="First miner's port; 0 for any free ports.")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--netuid", type=int, default=1)
        parser.add_argument(
            "--kind",
            choices=list(KIND_PATHS),
            default="chat",
            help="What the miners answer, each on its OpenAI path (chat: /v1/chat/completions).",
        )
        parser.add_argument("--out", default="var/metagraph.json", help="Where to write the snapshot.")
        parser.add_argument("--latency", type=float, default=0.0, help="Seconds before each answer.")
        parser.add_argument("--jitter", type=float, default=0.0, help="Uniform ± seconds on top of --latency.")
        parser.add_argument("--failure-rate", type=float, default=0.0, help="Chance (0..1) of an HTTP 500.")
        parser.add_argument("--upstream", default=None, help="OpenAI-compatible base URL to forward prompts to.")
        parser.add_argument("--upstream-model", default=None, help="Model name sent upstream instead of the request's.")
        parser.add_argument(
            "--no-usage", action="store_true", help="Report no token usage (the endpoint then counts it)."
        )
        parser.add_argument(
            "--no-auth", action="store_true", help="Answer unsigned requests too (clients without btauth/1)."
        )

    def handle(self, *args, **opts):
        if opts["miners"] < 1:
            raise OperatorError("--miners must be at least 1")
        if not 0 <= opts["port"] <= 65535:
            raise OperatorError("--port must be between 0 and 65535")
        if opts["upstream"] and opts["kind"] != "chat":
            raise OperatorError("--upstream forwards chat completions only; leave it out with --kind " + opts["kind"])
        behaviour = MinerBehaviour(
            latency=opts["latency"],
            jitter=opts["jitter"],
            failure_rate=opts["failure_rate"],
            upstream=opts["upstream"],
            upstream_api_key=self._upstream_key(opts["upstream"]),
            upstream_model=opts["upstream_model"],
            require_auth=not opts["no_auth"],
            report_usage=not opts["no_usage"],
        )
        subnet = LocalSubnet(
            opts["miners"],
            host=opts["host"],
            base_port=opts["port"],
            behaviour=behaviour,
            kind=opts["kind"],
            netuid=opts["netuid"],
        )
        out = Path(opts["out"]).resolve()
        # The snapshot's presence tells scripts the miners listen; a stale one must not.
        out.unlink(missing_ok=True)
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(self._serve(subnet, out))
        except OSError as exc:
            raise OperatorError(str(exc)) from exc

    @staticmethod
    def _upstream_key(upstream: str | None) -> str | None:
        # The configured OpenAI key goes only to the configured OpenAI URL, never to an arbitrary one.
        if upstream and settings.OPENAI_API_KEY and upstream.rstrip("/") == settings.OPENAI_BASE_URL.rstrip("/"):
            return settings.OPENAI_API_KEY
        return None

    async def _serve(self, subnet: LocalSubnet, out: Path) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await subnet.serve(until=stop, on_ready=lambda ready: self._announce(ready, out))
        self.stdout.write("local subnet stopped")

    def _announce(self, subnet: LocalSubnet, out: Path) -> None:
        self.stdout.write(f"{subnet.kind} miners on {subnet.path}")
        for miner in subnet.miners:
            self.stdout.write(f"uid {miner.uid:>3}  {miner.axon:<22} {miner.hotkey}")
        path = subnet.write_snapshot(out)
        self.stdout.write(f"snapshot: {path}")
        self.stdout.flush()
