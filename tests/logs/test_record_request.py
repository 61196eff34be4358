"""Writing request logs: one request with its miner rows, and the rewrite a
stream makes of the record it wrote at its first content."""

from __future__ import annotations

import pytest
from django.utils import timezone

from logs.models import MinerResponse, Request
from logs.services import MinerLog, RequestLog, record_request, rewrite_request

pytestmark = pytest.mark.django_db(transaction=True)


def entry(**fields) -> RequestLog:
    return RequestLog(route="/v1/chat/completions", started_at=timezone.now(), messages=[{"role": "user"}], **fields)


def test_a_request_is_written_with_its_miners(postgres):
    log = entry(status=502, api_error="AllMinersFailed", miners=[MinerLog(1, "5A", False, error="HTTP 500")])
    record_request(log)
    saved = Request.objects.get(pk=log.id)
    assert (saved.status, saved.api_error, saved.messages) == (502, "AllMinersFailed", [{"role": "user"}])
    assert list(MinerResponse.objects.filter(request=saved).values_list("uid", "error")) == [(1, "HTTP 500")]


def test_the_final_state_replaces_the_early_record(postgres):
    log = entry(credits_charged=1, miners=[MinerLog(3, "5C", True, response="Miner 3")])
    record_request(log)
    log.elapsed_ms, log.status, log.api_error = 900.0, 499, "ClientClosedRequest"
    log.miners = [MinerLog(3, "5C", True, response="Miner 3 heard: all of it"), MinerLog(4, "5D", False, error="x")]
    rewrite_request(log)
    saved = Request.objects.get(pk=log.id)
    assert (saved.status, saved.api_error, saved.elapsed_ms, saved.credits_charged) == (
        499,
        "ClientClosedRequest",
        900.0,
        1,
    )
    rows = sorted(MinerResponse.objects.filter(request=saved).values_list("uid", "response"))
    assert rows == [(3, "Miner 3 heard: all of it"), (4, "")]


def test_a_rewrite_without_an_early_record_writes_it(postgres):
    log = entry(miners=[MinerLog(2, "5B", True, response="ok")])
    rewrite_request(log)
    assert Request.objects.filter(pk=log.id).exists()
    assert MinerResponse.objects.get(request_id=log.id).response == "ok"
