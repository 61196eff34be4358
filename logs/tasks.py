"""Celery tasks of the logs app (found by ``app.autodiscover_tasks()``)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from endpoint.core.models import EndpointConfig

from .retention import purge_request_logs


@shared_task(name="logs.purge_request_logs")
def purge_request_logs_task() -> dict:
    """Beat runs this hourly; the retention is read from config each time."""
    return asdict(purge_request_logs(EndpointConfig.load().log_retention_days))
