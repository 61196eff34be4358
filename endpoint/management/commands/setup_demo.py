"""Set the endpoint up for a local subnet and print a demo key and an admin
login (used by `make run`)."""

from __future__ import annotations

import secrets
from pathlib import Path

from bittensor.sp_core import Keypair
from django.contrib.auth import get_user_model

from endpoint.core.commands import OperatorCommand
from endpoint.core.config import do_set_config
from endpoint.core.models import EndpointConfig
from endpoint.network.metagraph import sync_metagraph
from keys.models import ApiKey
from keys.services import do_create_key

DEMO_KEY_NAME = "demo (make run)"


class Command(OperatorCommand):
    help = "Configure the endpoint for a local subnet snapshot; print a demo key and admin login."

    def add_arguments(self, parser):
        parser.add_argument("--metagraph", required=True, help="Snapshot written by `manage.py localnet`.")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Where the server will listen.")
        parser.add_argument("--credits", type=int, default=1000)

    def handle(self, *args, metagraph: str, url: str, credits: int, **options):
        do_set_config("network", "local")
        do_set_config("metagraph_source", "file")
        do_set_config("metagraph_file", str(Path(metagraph).resolve()))
        if not EndpointConfig.load().hotkey_mnemonic:
            # A throwaway validator hotkey for the local subnet; stored encrypted, never printed.
            do_set_config("hotkey_mnemonic", Keypair.generate_mnemonic(12))
        result = sync_metagraph()

        ApiKey.objects.filter(name=DEMO_KEY_NAME).delete()
        demo = do_create_key(name=DEMO_KEY_NAME, credits=credits)
        password = secrets.token_urlsafe(12)
        User = get_user_model()
        admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@localhost"})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()

        self.stdout.write(
            f"Local subnet: {result.created + result.updated} miners on netuid {result.netuid}.\n\n"
            f"Demo API key ({credits} credits, shown once): {demo.raw}\n"
            f"Admin: {url}/admin/  user admin  password {password}\n\n"
            "Try it:\n"
            f"curl {url}/chat \\\n"
            '  -H "Content-Type: application/json" \\\n'
            f'  -H "Authorization: Bearer {demo.raw}" \\\n'
            '  -H "Endpoint-Version: 2023-05-19" \\\n'
            """  -d '{"messages": [{"role": "user", "content": "What is 1+1?"}], "top_n": 3}'\n"""
        )
