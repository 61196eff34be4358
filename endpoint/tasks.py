"""Celery tasks of the endpoint app (found by ``app.autodiscover_tasks()``)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task
from django.utils import timezone

from endpoint.core.models import EndpointConfig
from endpoint.network.metagraph import sync_metagraph


@shared_task(name="endpoint.sync_metagraph")
def sync_metagraph_task() -> dict:
    """The periodic metagraph sync (Celery beat). A failure raises, so it shows
    as a failed task in the worker's log; /health/ready reports the growing age."""
    # A plain dict: the result backend stores JSON.
    return asdict(sync_metagraph())


@shared_task(name="endpoint.sync_metagraph_when_due")
def sync_metagraph_when_due_task() -> dict | None:
    """Beat's tick: sync when the last sync is older than the configured
    ``metagraph_sync_seconds``, so ``config set`` changes the interval live."""
    config = EndpointConfig.load()
    synced = config.metagraph_synced_at
    if synced is not None and (timezone.now() - synced).total_seconds() < config.metagraph_sync_seconds:
        return None
    return asdict(sync_metagraph())
