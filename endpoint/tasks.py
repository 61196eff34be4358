"""Celery tasks of the endpoint app (found by ``app.autodiscover_tasks()``)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from endpoint.core.errors import MetagraphSourceError
from endpoint.network.metagraph import SubnetSync, sync_subnets


def _reported(outcomes: list[SubnetSync]) -> dict:
    """Each synced subnet's result by slug (a plain dict: the result backend
    stores JSON). A subnet whose source failed raises once all were tried, so
    it shows as a failed task in the worker's log; /health/ready and the
    admin report the growing age."""
    failed = [f"{o.subnet.slug}: {o.error}" for o in outcomes if o.error is not None]
    if failed:
        raise MetagraphSourceError("metagraph sync failed for " + "; ".join(failed))
    return {o.subnet.slug: asdict(o.result) for o in outcomes if o.result is not None}


@shared_task(name="endpoint.sync_metagraph")
def sync_metagraph_task() -> dict:
    """Sync every enabled subnet's metagraph now."""
    return _reported(sync_subnets())


@shared_task(name="endpoint.sync_metagraph_when_due")
def sync_metagraph_when_due_task() -> dict | None:
    """Beat's tick: sync each enabled subnet whose last sync is older than the
    configured ``metagraph_sync_seconds``, so ``config set`` changes the
    interval live. None when none was due."""
    return _reported(sync_subnets(due_only=True)) or None
