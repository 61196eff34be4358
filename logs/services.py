"""Writing request logs: one Request row and its MinerResponse rows, in one
transaction with a single bulk insert for the miners."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from .models import MinerResponse, Request

log = logging.getLogger(__name__)


@dataclass
class MinerLog:
    uid: int
    hotkey: str
    is_success: bool
    response: str = ""
    error: str = ""
    status: int | None = None
    response_ms: float = 0.0


@dataclass
class RequestLog:
    route: str
    started_at: datetime
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    key_id: int | None = None
    user_id: int | None = None
    messages: list = field(default_factory=list)
    strategy: str = ""
    status: int = 200
    api_error: str = ""
    credits_charged: int = 0
    elapsed_ms: float = 0.0
    client_ip: str | None = None
    miners: list[MinerLog] = field(default_factory=list)


def record_request(entry: RequestLog) -> Request:
    with transaction.atomic():
        request = Request.objects.create(
            id=entry.id,
            key_id=entry.key_id,
            user_id=entry.user_id,
            route=entry.route,
            messages=entry.messages,
            strategy=entry.strategy,
            status=entry.status,
            api_error=entry.api_error,
            credits_charged=entry.credits_charged,
            started_at=entry.started_at,
            elapsed_ms=entry.elapsed_ms,
            client_ip=entry.client_ip,
        )
        if entry.miners:
            MinerResponse.objects.bulk_create(
                MinerResponse(
                    request=request,
                    uid=m.uid,
                    hotkey=m.hotkey,
                    is_success=m.is_success,
                    response=m.response,
                    error=m.error,
                    status=m.status,
                    response_ms=m.response_ms,
                )
                for m in entry.miners
            )
    return request
