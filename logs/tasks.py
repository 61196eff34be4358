"""Celery tasks of the logs app (found by ``app.autodiscover_tasks()``)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from endpoint.core.models import EndpointConfig

from .retention import purge_request_logs
from .services import sweep_credits


@shared_task(name="logs.purge_request_logs")
def purge_request_logs_task() -> dict:
    """Beat runs this hourly; the retention is read from config each time."""
    return asdict(purge_request_logs(EndpointConfig.load().log_retention_days))


@shared_task(name="logs.release_abandoned_calls")
def release_abandoned_calls_task() -> int:
    """Beat runs this every minute: holds past their deadline are released,
    and late refunds of revoked keys moved on."""
    released, forwarded = sweep_credits()
    return len(released) + len(forwarded)
