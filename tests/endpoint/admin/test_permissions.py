"""Staff only; the viewer group reads logs and the dashboard, not keys or
config; secrets and outbound addresses need a superuser."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from endpoint.core.config import FIELDS, SECRETS, SUPERUSER_ONLY, do_set_config
from endpoint.core.models import EndpointConfig, Neuron
from tests.endpoint.roles import grant, make_user
from tests.factories import ApiKeyFactory, RequestLogFactory, UserFactory

KEYS = "/admin/keys/apikey/"
CONFIG = "/admin/endpoint/endpointconfig/"
LOGS = "/admin/logs/request/"


def migrate_logs(target: str) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("logs", target)])


def latest_logs_migration() -> str:
    (leaf,) = [name for app, name in MigrationExecutor(connection).loader.graph.leaf_nodes() if app == "logs"]
    return leaf


def test_the_migration_makes_the_viewer_group_with_read_only_log_permissions(postgres):
    latest = latest_logs_migration()
    try:
        migrate_logs("0001_initial")
        assert not Group.objects.filter(name="viewer").exists()
        migrate_logs("0002_viewer_group")
        group = Group.objects.get(name="viewer")
        assert sorted(group.permissions.values_list("codename", flat=True)) == ["view_minerresponse", "view_request"]
        migrate_logs("0003_viewer_reads_neurons")
        readable = sorted(group.permissions.values_list("codename", flat=True))
        assert readable == ["view_minerresponse", "view_neuron", "view_request"]
    finally:
        migrate_logs(latest)  # the tests after this one need the schema as it is


@pytest.mark.parametrize("url", [KEYS, KEYS + "add/", CONFIG, CONFIG + "1/change/"])
def test_viewer_is_refused_keys_and_config(viewer_console, url):
    assert viewer_console.get(url).status_code == 403


def test_viewer_is_refused_a_key_page(viewer_console):
    key = ApiKeyFactory()
    assert viewer_console.get(f"{KEYS}{key.pk}/change/").status_code == 403


def test_viewer_reads_logs_and_the_dashboard(viewer_console):
    logged = RequestLogFactory(messages=[{"role": "user", "content": "viewer can read this"}])
    assert viewer_console.get(LOGS).status_code == 200
    detail = viewer_console.get(f"{LOGS}{logged.pk}/change/")
    assert detail.status_code == 200
    assert "viewer can read this" in detail.text
    index = viewer_console.get("/admin/")
    assert index.status_code == 200
    assert 'id="dashboard"' in index.text
    assert "/admin/keys/apikey/" not in index.text  # neither the app list nor top keys link there


def test_viewer_reads_neurons_but_cannot_change_them(viewer_console):
    assert viewer_console.get(LOGS + "export/").status_code == 200
    neuron = Neuron.objects.create(netuid=1, uid=3, hotkey="5Hot", coldkey="5Cold", description="fast miner")
    assert viewer_console.get("/admin/endpoint/neuron/").status_code == 200
    page = viewer_console.get(f"/admin/endpoint/neuron/{neuron.pk}/change/")
    assert page.status_code == 200 and "fast miner" in page.text and 'name="description"' not in page.text
    viewer_console.post(f"/admin/endpoint/neuron/{neuron.pk}/change/", {"description": "changed", "tags": ""})
    neuron.refresh_from_db()
    assert neuron.description == "fast miner"


def test_non_staff_are_sent_to_the_login(postgres):
    client = Client()
    client.force_login(UserFactory(is_staff=False))
    for url in ("/admin/", LOGS, KEYS):
        response = client.get(url)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def test_staff_without_the_group_sees_no_dashboard(postgres):
    client = Client()
    client.force_login(UserFactory(is_staff=True))
    index = client.get("/admin/")
    assert index.status_code == 200
    assert 'id="dashboard"' not in index.text


# --- config: secrets and outbound addresses need a superuser ---------------------------

LOCKED = ("hotkey_mnemonic", "openai_api_key", "openai_base_url", "network", "metagraph_source", "metagraph_file")
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
OPENAI_KEY = "sk-test-very-secret-openai-key-1234"


def staff_console(*perms: str) -> Client:
    client = Client()
    client.force_login(grant(make_user("ops", staff=True), *perms))
    return client


def posted_config(client: Client, **changes: str) -> dict:
    """The config page posted back as the browser has it, with ``changes``."""
    form = client.get(f"{CONFIG}1/change/").context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name)
        if name == "global_rate_limits":
            data[f"{name}-rows"] = "0"
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif name not in SECRETS and not field.disabled:
            data[name] = "" if value is None else str(value)
    return {**data, **changes}


@pytest.fixture
def stored_secrets(postgres):
    do_set_config("hotkey_mnemonic", MNEMONIC)
    do_set_config("openai_api_key", OPENAI_KEY)


def test_staff_see_secrets_and_addresses_disabled(postgres):
    form = staff_console("endpoint.change_endpointconfig").get(f"{CONFIG}1/change/").context["adminform"].form
    assert [name for name in FIELDS if form.fields[name].disabled] == [n for n in FIELDS if n in SUPERUSER_ONLY]
    assert set(LOCKED) <= set(SUPERUSER_ONLY)
    assert "Only a superuser may change this." in form.fields["openai_base_url"].help_text
    assert not form.fields["netuid"].disabled


def test_a_forged_post_from_staff_changes_only_what_they_may(stored_secrets):
    client = staff_console("endpoint.change_endpointconfig", "endpoint.view_endpointconfig")
    forged = {
        "openai_base_url": "http://attacker.example/v1",
        "openai_api_key": "sk-attacker-0123456789",
        "hotkey_mnemonic": "",
        "network": "ws://attacker.example:9944",
        "metagraph_source": "file",
        "metagraph_file": "/etc/passwd",
        "miner_path": "@attacker.example/x",
        "netuid": "9",
    }
    before = EndpointConfig.load()
    response = client.post(f"{CONFIG}1/change/", posted_config(client, **forged))
    assert response.status_code == 302
    after = EndpointConfig.load()
    assert after.netuid == 9  # what staff may change is changed
    for name in SUPERUSER_ONLY:
        assert getattr(after, name) == getattr(before, name), name
    assert (after.openai_api_key, after.hotkey_mnemonic) == (OPENAI_KEY, MNEMONIC)


def test_a_superuser_changes_the_moderation_address(console):
    response = console.post(f"{CONFIG}1/change/", posted_config(console, openai_base_url="https://proxy.example/v1"))
    assert response.status_code == 302
    assert EndpointConfig.load().openai_base_url == "https://proxy.example/v1"


def test_a_read_only_config_page_shows_secrets_masked(stored_secrets):
    page = staff_console("endpoint.view_endpointconfig").get(f"{CONFIG}1/change/")
    assert page.status_code == 200
    assert 'name="netuid"' not in page.text  # read-only: no inputs at all
    assert "legal winner" not in page.text and "very-secret" not in page.text
    assert "****** (12 words)" in page.text and "****1234" in page.text


def test_a_refused_admin_page_is_one_log_line_without_a_traceback(viewer_console, caplog):
    caplog.set_level("INFO")
    assert viewer_console.get(KEYS).status_code == 403

    lines = [r for r in caplog.records if KEYS in r.getMessage()]
    assert [(r.name, r.levelname, r.getMessage()) for r in lines] == [
        ("django.request", "WARNING", f"Forbidden (Permission denied): {KEYS}")
    ]
    assert lines[0].exc_info is None and "Traceback" not in caplog.text
