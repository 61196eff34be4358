"""Set the endpoint up for a local subnet and print a demo key and an admin
login (used by `make run`). The key and the password are kept in
var/demo.json (readable by its owner only) and reused on the next run, so a
restart doesn't orphan the requests logged under the old key; `--reset`
(`make run RESET=1`) makes new ones, disabling the old key rather than
deleting it."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from bittensor.sp_core import Keypair
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model

from endpoint.core.commands import OperatorCommand
from endpoint.core.config import do_set_config
from endpoint.core.errors import OperatorError
from endpoint.core.models import EndpointConfig, Subnet
from endpoint.core.subnets import do_add_subnet, do_edit_subnet
from endpoint.network.metagraph import load_snapshot, sync_metagraph, sync_subnet
from keys.models import ApiKey, hash_secret
from keys.services import do_create_key, do_edit_key

DEMO_KEY_NAME = "demo (make run)"


class Command(OperatorCommand):
    help = "Configure the endpoint for a local subnet snapshot; print a demo key and admin login."

    def add_arguments(self, parser):
        parser.add_argument("--metagraph", required=True, help="Snapshot written by `manage.py localnet`.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the server will listen.")
        parser.add_argument("--credits", type=int, default=1000)
        parser.add_argument("--reset", action="store_true", help="A new demo key and admin password.")
        kept_in = str(settings.VAR_DIR / "demo.json")
        parser.add_argument("--state", default=kept_in, help="Where the key and password are kept between runs.")
        parser.add_argument(
            "--subnet",
            action="append",
            default=[],
            metavar="KIND=SNAPSHOT",
            help="A local subnet of another kind (image, speech, transcription, embeddings) to register "
            "and sync from its `manage.py localnet --kind` snapshot; repeatable.",
        )

    def handle(self, *args, metagraph: str, url: str, credits: int, reset: bool, subnet: list[str], **options):
        do_set_config("network", "local")
        do_set_config("metagraph_source", "file")
        do_set_config("metagraph_file", str(Path(metagraph).resolve()))
        if not EndpointConfig.load().hotkey_mnemonic:
            # A throwaway validator hotkey for the local subnet; stored encrypted, never printed.
            do_set_config("hotkey_mnemonic", Keypair.generate_mnemonic(12))
        result = sync_metagraph()
        others = [_local_subnet(spec) for spec in subnet]

        state = Path(options["state"])
        kept = None if reset else _kept(state)
        if kept is None:
            for old in ApiKey.objects.filter(name=DEMO_KEY_NAME, enabled=True):
                do_edit_key(old, enabled=False)  # kept: its requests stay attributed
            raw, password = do_create_key(name=DEMO_KEY_NAME, credits=credits).raw, secrets.token_urlsafe(12)
            User = get_user_model()
            admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
            admin.is_staff = admin.is_superuser = True
            admin.set_password(password)
            admin.save()
            _keep(state, raw, password)
            what = f"{credits} credits, shown once"
        else:
            raw, password = kept
            what = "kept from the last run; `make run RESET=1` for a new one"

        self.stdout.write(
            f"Local subnet: {result.created + result.updated} miners on netuid {result.netuid}.\n"
            + "".join(f"  and {row.slug} ({row.kind}, sn{row.netuid}): {row.miner_path}\n" for row in others)
            + "\n"
            f"Demo API key ({what}): {raw}\n"
            f"Admin: {url}/admin/  user admin  password {password}\n\n"
            "Try it:\n"
            f"curl {url}/chat \\\n"
            '  -H "Content-Type: application/json" \\\n'
            f'  -H "Authorization: Bearer {raw}" \\\n'
            '  -H "Endpoint-Version: 2023-05-19" \\\n'
            """  -d '{"messages": [{"role": "user", "content": "What is 1+1?"}], "top_n": 3}'\n"""
        )


# The slug each kind's local subnet gets (its netuid comes from its snapshot).
LOCAL_SLUGS = {"image": "images", "speech": "speech", "transcription": "transcription", "embeddings": "embeddings"}


def _local_subnet(spec: str) -> Subnet:
    """Register (or point at the new snapshot) and sync the local subnet ``KIND=SNAPSHOT`` names."""
    kind, _, snapshot = spec.partition("=")
    if kind not in LOCAL_SLUGS or not snapshot:
        raise OperatorError(f"--subnet: expected KIND=SNAPSHOT with KIND one of {', '.join(LOCAL_SLUGS)}, got {spec!r}")
    path = str(Path(snapshot).resolve())
    netuid = str(load_snapshot(path)["netuid"])
    fields = {"network": "local", "netuid": netuid, "metagraph_source": "file", "metagraph_file": path}
    slug = LOCAL_SLUGS[kind]
    if Subnet.objects.filter(slug=slug).exists():
        row = do_edit_subnet(slug, fields)
    else:
        row = do_add_subnet(slug, {"name": f"Local {kind}", "kind": kind, **fields})
    sync_subnet(row)
    return row


def _kept(state: Path) -> tuple[str, str] | None:
    """The last run's key and password, if both still work."""
    try:
        saved = json.loads(state.read_text())
        raw, password = saved["key"], saved["password"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    usable = ApiKey.objects.filter(secret_hash=hash_secret(raw), name=DEMO_KEY_NAME, enabled=True).exists()
    return (raw, password) if usable and authenticate(username="admin", password=password) else None


def _keep(state: Path, raw: str, password: str) -> None:
    state.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"key": raw, "password": password}, out)
