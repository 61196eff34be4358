"""Celery tasks of the endpoint app (found by ``app.autodiscover_tasks()``)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from endpoint.network.metagraph import sync_metagraph


@shared_task(name="endpoint.sync_metagraph")
def sync_metagraph_task() -> dict:
    """The periodic metagraph sync (Celery beat). A failure raises, so it shows
    as a failed task in the worker's log; /health/ready reports the growing age."""
    # A plain dict: the result backend stores JSON.
    return asdict(sync_metagraph())
