"""Request logs past the retention period are purged by the beat-scheduled
task; the retention and the metagraph sync interval are operator config."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from endpoint.celery import app
from endpoint.core.config import do_set_config
from endpoint.core.models import EndpointConfig, Neuron
from logs.models import MinerResponse, Request
from tests.commands import manage


def beat_task(name: str):
    """The task a beat entry of settings.CELERY_BEAT_SCHEDULE runs, as a worker would find it."""
    app.loader.import_default_modules()
    return app.tasks[settings.CELERY_BEAT_SCHEDULE[name]["task"]]


def make_request(days_ago: float, miners: int = 2) -> Request:
    request = Request.objects.create(
        route="/chat", status=200, started_at=timezone.now() - timedelta(days=days_ago), messages=[]
    )
    MinerResponse.objects.bulk_create(
        MinerResponse(request=request, uid=uid, is_success=True, response="hi", response_ms=12) for uid in range(miners)
    )
    return request


@pytest.fixture
def logs(postgres):
    old = [make_request(days) for days in (91, 200, 365)]
    recent = [make_request(days) for days in (89, 1, 0)]
    return old, recent


def test_beat_purge_deletes_exactly_the_old_logs_and_their_miner_responses(logs):
    old, recent = logs
    result = beat_task("purge-request-logs").apply().get()
    assert result == {"requests": 3, "miner_responses": 6, "media": 0}
    assert set(Request.objects.values_list("pk", flat=True)) == {r.pk for r in recent}
    assert MinerResponse.objects.count() == 6
    assert not MinerResponse.objects.filter(request_id__in=[r.pk for r in old]).exists()


def test_retention_is_operator_config(logs):
    code, out, _ = manage("config", "set", "log_retention_days", "30")
    assert code == 0
    beat_task("purge-request-logs").apply().get()
    assert sorted(r.started_at.date() for r in Request.objects.all()) == sorted(
        (timezone.now() - timedelta(days=d)).date() for d in (1, 0)
    )


def test_zero_retention_keeps_every_log(logs):
    do_set_config("log_retention_days", "0")
    assert beat_task("purge-request-logs").apply().get() == {"requests": 0, "miner_responses": 0, "media": 0}
    assert Request.objects.count() == 6 and MinerResponse.objects.count() == 12


def test_config_shows_the_new_settings_and_rejects_bad_values(postgres):
    code, out, _ = manage("config", "get")
    assert code == 0 and "log_retention_days" in out and "metagraph_sync_seconds" in out
    code, _, err = manage("config", "set", "log_retention_days", "-1")
    assert code == 1 and "≥ 0" in err
    code, _, err = manage("config", "set", "metagraph_sync_seconds", "2")
    assert code == 1 and "≥ 10" in err


def test_beat_syncs_the_metagraph_when_the_configured_interval_has_passed(postgres, tmp_path):
    snapshot = {
        "network": "local",
        "netuid": 1,
        "block": 7,
        "neurons": [
            {"uid": uid, "hotkey": f"5Hot{uid}", "coldkey": "5Cold", "axon": f"127.0.0.1:{9100 + uid}"}
            for uid in range(3)
        ],
    }
    path = tmp_path / "metagraph.json"
    path.write_text(json.dumps(snapshot))
    do_set_config("metagraph_source", "file")
    do_set_config("metagraph_file", str(path))
    do_set_config("metagraph_sync_seconds", "600")
    sync = beat_task("sync-metagraph")

    assert sync.apply().get() is not None  # never synced: due now
    assert Neuron.objects.filter(netuid=1).count() == 3
    assert sync.apply().get() is None  # synced a moment ago: not due

    EndpointConfig.objects.filter(pk=1).update(metagraph_synced_at=timezone.now() - timedelta(seconds=601))
    assert sync.apply().get() is not None
    assert EndpointConfig.load().metagraph_synced_at > timezone.now() - timedelta(seconds=60)
