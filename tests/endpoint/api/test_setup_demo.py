"""What `make run` prints must work as printed: the demo key answers /chat."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from endpoint.core.models import EndpointConfig
from endpoint.network.metagraph import forget_directory

from .conftest import HELLO

pytestmark = pytest.mark.django_db(transaction=True)


async def test_demo_key_and_admin_login_work(subnet, tmp_path, api):
    from endpoint.core.db import run_db

    snapshot = subnet.write_snapshot(tmp_path / "metagraph.json")
    out = io.StringIO()
    subnet.reset()
    forget_directory()
    await run_db(call_command, "setup_demo", "--metagraph", str(snapshot), stdout=out)
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
