"""/api/admin/config/: the settings `manage.py config` knows, through the
same do_set_config; secrets go in but only ever come out masked, and only a
superuser changes secrets and outbound addresses."""

from __future__ import annotations

import pytest
from bittensor.sp_core import Keypair

from endpoint.core.config import FIELDS
from endpoint.core.models import EndpointConfig
from tests.commands import manage


def test_get_lists_every_setting_the_cli_knows(admin_api):
    r = admin_api.get("/api/admin/config/")
    assert r.status_code == 200
    assert set(r.json()) == set(FIELDS)


def test_patch_changes_settings_the_cli_then_reads(admin_api):
    r = admin_api.patch(
        "/api/admin/config/",
        {"netuid": 7, "moderation_enabled": True, "global_rate_limits": [{"times": 60, "seconds": 60}]},
        format="json",
    )
    assert r.status_code == 200, r.json()
    assert (r.json()["netuid"], r.json()["moderation_enabled"]) == (7, True)
    assert manage("config", "get", "netuid")[1].strip() == "7"
    assert manage("config", "get", "global_rate_limits")[1].strip() == '[{"times": 60, "seconds": 60}]'

    manage("config", "set", "miner_timeout", "30")
    assert admin_api.get("/api/admin/config/").json()["miner_timeout"] == 30.0


def test_secrets_are_write_only(superuser_api):
    mnemonic = Keypair.generate_mnemonic(12)
    r = superuser_api.patch(
        "/api/admin/config/", {"hotkey_mnemonic": mnemonic, "openai_api_key": "sk-live-abcdefghijklmnop"}, format="json"
    )
    assert r.status_code == 200, r.json()
    for response in (r, superuser_api.get("/api/admin/config/")):
        text = response.content.decode()
        assert mnemonic not in text and " ".join(mnemonic.split()[:3]) not in text
        assert "sk-live" not in text
        assert response.json()["hotkey_mnemonic"] == "****** (12 words)"
        assert response.json()["openai_api_key"] == "****mnop"
    assert EndpointConfig.load().hotkey_mnemonic == mnemonic  # stored, just never shown


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"miner_timeout": 0}, "miner_timeout"),
        ({"miner_timeout": 100}, "miner_timeout"),
        ({"network": "nowhere"}, "network"),
        ({"metagraph_source": "ftp"}, "metagraph_source"),
        ({"default_strategy": "fastest"}, "default_strategy"),
        ({"hotkey_mnemonic": "not a real mnemonic"}, "hotkey_mnemonic"),
        ({"netuid": "one"}, "netuid"),
        # Found by the fuzzer: past the column's range was a 500 from the database.
        ({"netuid": 304250263527210}, "netuid"),
        ({"cost_per_answer": 2**31}, "cost_per_answer"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_bad_values_are_400_for_their_field_and_change_nothing(superuser_api, body, field):
    before = superuser_api.get("/api/admin/config/").json()
    r = superuser_api.patch("/api/admin/config/", {"netuid": 42, **body}, format="json")
    assert r.status_code == 400
    assert list(r.json()["errors"]) == [field]
    assert superuser_api.get("/api/admin/config/").json() == before  # netuid 42 was not kept either


@pytest.mark.parametrize(
    "field",
    [
        "hotkey_mnemonic",
        "openai_api_key",
        "openai_base_url",
        "network",
        "metagraph_source",
        "metagraph_file",
        "miner_path",
    ],
)
def test_only_a_superuser_changes_secrets_and_addresses(admin_api, field):
    before = EndpointConfig.load()
    r = admin_api.patch("/api/admin/config/", {"netuid": 42, field: "http://attacker.example/"}, format="json")
    assert r.status_code == 403
    assert r.json() == {"detail": f"Only a superuser may change {field}.", "code": "permission_denied"}
    after = EndpointConfig.load()
    assert (after.netuid, getattr(after, field)) == (before.netuid, getattr(before, field))


def test_a_superuser_points_moderation_at_another_server(superuser_api):
    r = superuser_api.patch("/api/admin/config/", {"openai_base_url": "https://proxy.example/v1"}, format="json")
    assert r.status_code == 200, r.json()
    assert EndpointConfig.load().openai_base_url == "https://proxy.example/v1"


def test_an_empty_patch_is_400(admin_api):
    assert admin_api.patch("/api/admin/config/", {}, format="json").status_code == 400


def test_timeout_and_its_cap_rise_together_in_one_patch(admin_api):
    r = admin_api.patch("/api/admin/config/", {"miner_timeout": 100, "max_miner_timeout": 120}, format="json")
    assert r.status_code == 200
    assert (r.json()["miner_timeout"], r.json()["max_miner_timeout"]) == (100.0, 120.0)
