"""Staff only; the viewer group reads logs and the dashboard, not keys or config."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from tests.factories import ApiKeyFactory, RequestLogFactory, UserFactory

KEYS = "/admin/keys/apikey/"
CONFIG = "/admin/endpoint/endpointconfig/"
LOGS = "/admin/logs/request/"


def migrate_logs(target: str) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("logs", target)])


def test_the_migration_makes_the_viewer_group_with_read_only_log_permissions(postgres):
    migrate_logs("0001_initial")
    assert not Group.objects.filter(name="viewer").exists()
    migrate_logs("0002_viewer_group")
    group = Group.objects.get(name="viewer")
    assert sorted(group.permissions.values_list("codename", flat=True)) == ["view_minerresponse", "view_request"]


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


def test_viewer_cannot_export_more_than_the_logs(viewer_console):
    assert viewer_console.get(LOGS + "export/").status_code == 200
    assert viewer_console.get("/admin/endpoint/neuron/").status_code == 403


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
