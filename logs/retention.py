"""How long request logs are kept: the purge behind the beat task and any
operator who wants to run it by hand."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .models import MediaFile, MinerResponse, Request

log = logging.getLogger(__name__)

# Rows deleted per transaction: a months-old backlog is purged in short
# transactions that don't hold locks against the request-log writers.
PURGE_BATCH = 2000


@dataclass
class Purged:
    requests: int = 0
    miner_responses: int = 0
    media: int = 0


def purge_request_logs(retention_days: int, *, now: datetime | None = None) -> Purged:
    """Delete Requests started more than ``retention_days`` ago, with their
    MinerResponses. 0 keeps everything."""
    purged = Purged(media=purge_expired_media(now=now))
    if retention_days <= 0:
        return purged
    cutoff = (now or timezone.now()) - timedelta(days=retention_days)
    while True:
        with transaction.atomic():
            ids = list(Request.objects.filter(started_at__lt=cutoff).values_list("pk", flat=True)[:PURGE_BATCH])
            if not ids:
                break
            # Explicitly, in one statement: Request.delete() alone would load every MinerResponse to cascade.
            purged.miner_responses += MinerResponse.objects.filter(request_id__in=ids).delete()[0]
            purged.requests += Request.objects.filter(pk__in=ids).delete()[1].get(Request._meta.label, 0)
    if purged.requests:
        log.info("purged %d request logs older than %d days", purged.requests, retention_days)
    return purged


def purge_expired_media(*, now: datetime | None = None) -> int:
    """Delete the images served as URLs whose time is up (they already answer 404)."""
    deleted = MediaFile.objects.filter(expires_at__lt=now or timezone.now()).delete()[0]
    if deleted:
        log.info("purged %d expired media files", deleted)
    return deleted
