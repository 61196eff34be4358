"""Celery tasks of the billing app (found by ``app.autodiscover_tasks()``)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from .deposits import scan_deposits


@shared_task(name="billing.scan_tao_deposits")
def scan_tao_deposits_task() -> dict | None:
    """Beat's scan for TAO deposits; None while deposits are off. A chain
    that can't be read fails the task (in the worker's log); the next tick
    goes on from the same block."""
    result = scan_deposits()
    return asdict(result) if result is not None else None
