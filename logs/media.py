"""Media kept beside the request logs (``MediaFile``): an image answered as
a ``url``, for as long as the URL lives, and, with the config's
``retain_media``, the images and audio of calls for as long as the logs."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from endpoint.core.models import EndpointConfig

from .models import MediaFile

FOREVER = timedelta(days=365 * 100)  # log_retention_days 0: kept as long as the logs, which is forever


def do_keep_media(
    request_id: uuid.UUID,
    items: list[tuple[bytes, str]],
    *,
    source: str = MediaFile.Source.ANSWER,
    by_url: bool = False,
    retain: bool = False,
) -> list[MediaFile]:
    """Store ``items`` (bytes, content type) of a call: served by URL for
    MEDIA_URL_SECONDS when ``by_url``, kept with the logs when ``retain``."""
    if not (by_url or retain):
        return []
    now = timezone.now()
    url_until = now + timedelta(seconds=settings.MEDIA_URL_SECONDS) if by_url else None
    ends = [url_until] if url_until else []
    if retain:
        days = EndpointConfig.load().log_retention_days
        ends.append(now + (timedelta(days=days) if days else FOREVER))
    rows = [
        MediaFile(
            request_id=request_id,
            source=source,
            content_type=content_type,
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
            url_expires_at=url_until,
            expires_at=max(ends, default=now),
        )
        for data, content_type in items
    ]
    return MediaFile.objects.bulk_create(rows)


def served_media(media_id: uuid.UUID) -> tuple[str, bytes, datetime] | None:
    """An image still served by its URL: content type, bytes and until when."""
    return (
        MediaFile.objects.filter(pk=media_id, url_expires_at__gt=timezone.now())
        .values_list("content_type", "data", "url_expires_at")
        .first()
    )
