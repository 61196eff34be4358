"""What `make run` prints must work as printed: the demo key answers /chat."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from endpoint.core.models import EndpointConfig
from endpoint.network.metagraph import forget_directory
from keys.models import ApiKey, hash_secret

from .conftest import HELLO

pytestmark = pytest.mark.django_db(transaction=True)


async def test_demo_key_and_admin_login_work(subnet, tmp_path, api):
    from endpoint.core.db import run_db

    snapshot = subnet.write_snapshot(tmp_path / "metagraph.json")
    out = io.StringIO()
    subnet.reset()
    forget_directory()
    state = str(tmp_path / "demo.json")
    await run_db(call_command, "setup_demo", "--metagraph", str(snapshot), "--state", state, stdout=out)
    printed = out.getvalue()
    raw = re.search(r"shown once\): (vep_\S+)", printed).group(1)
    password = re.search(r"user admin\s+password (\S+)", printed).group(1)
    assert f"Bearer {raw}" in printed  # the curl command carries the key
    config = await run_db(EndpointConfig.load)
    assert config.hotkey_mnemonic and config.hotkey_mnemonic not in printed  # a hotkey, never shown

    forget_directory()
    r = await api.post("/chat", json={"messages": HELLO, "top_n": 3}, headers={"Authorization": f"Bearer {raw}"})
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"].endswith("What is 1+1?")
    assert await run_db(authenticate, username="admin", password=password) is not None


async def test_the_next_run_keeps_the_key_and_login_unless_reset(subnet, tmp_path):
    from endpoint.core.db import run_db

    snapshot, state = str(subnet.write_snapshot(tmp_path / "metagraph.json")), str(tmp_path / "demo.json")

    async def setup(*extra: str) -> tuple[str, str]:
        out = io.StringIO()
        await run_db(call_command, "setup_demo", "--metagraph", snapshot, "--state", state, *extra, stdout=out)
        printed = out.getvalue()
        return re.search(r"\): (vep_\S+)", printed).group(1), re.search(r"password (\S+)", printed).group(1)

    first = await setup()
    assert await setup() == first  # a restart: the same key, still valid, and the same login
    assert oct((tmp_path / "demo.json").stat().st_mode & 0o777) == "0o600"
    fresh = await setup("--reset")
    assert fresh[0] != first[0] and fresh[1] != first[1]
    old = await run_db(lambda: ApiKey.objects.get(secret_hash=hash_secret(first[0])))
    assert not old.enabled  # disabled, not deleted: its requests keep their key
    assert await run_db(authenticate, username="admin", password=fresh[1]) is not None


async def test_the_demo_registers_the_local_subnets_of_other_kinds_once(subnet, tmp_path, api):
    from endpoint.core.db import run_db
    from endpoint.core.models import Subnet
    from endpoint.network.localnet import LocalSubnet

    snapshot, state = str(subnet.write_snapshot(tmp_path / "metagraph.json")), str(tmp_path / "demo.json")
    with LocalSubnet(2, kind="image", netuid=19) as images:
        image_snapshot = str(images.write_snapshot(tmp_path / "metagraph-image.json"))
        for _ in range(2):  # the next `make run` points the same subnet at its new miners
            out = io.StringIO()
            await run_db(
                call_command,
                "setup_demo",
                "--metagraph",
                snapshot,
                "--state",
                state,
                "--subnet",
                f"image={image_snapshot}",
                stdout=out,
            )
        assert "images (image, sn19): /v1/images/generations" in out.getvalue()
        row = await Subnet.objects.aget(slug="images")
        assert row.kind == "image" and row.netuid == 19 and row.metagraph_synced_at is not None
        assert await Subnet.objects.filter(kind="image").acount() == 1
        raw = json.loads(Path(state).read_text())["key"]
        forget_directory()
        answer = await api.post(
            "/v1/images/generations",
            json={"model": "images/auto", "prompt": "a demo", "response_format": "b64_json"},
            headers={"Authorization": f"Bearer {raw}"},
        )
        assert answer.status_code == 200 and answer.json()["data"][0]["b64_json"]

    bad = io.StringIO()
    with pytest.raises(SystemExit):
        await run_db(
            call_command, "setup_demo", "--metagraph", snapshot, "--state", state, "--subnet", "video=x", stderr=bad
        )
