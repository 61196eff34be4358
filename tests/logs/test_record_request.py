"""Writing request logs: one request with its miner rows and the call's
settlement, and the rewrite a stream makes of the record it wrote at its
first content."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.utils import timezone

from keys.credits import Settlement, reserve_credits
from keys.models import ApiKey
from logs.models import MinerResponse, Request
from logs.services import MinerLog, RequestLog, record_request, rewrite_request, write_request_log
from tests.factories import ApiKeyFactory

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


# --- the settlement rides with the log -----------------------------------------------


def held_key(credits: int = 10, held: int = 3) -> tuple:
    key = ApiKeyFactory(credits=credits)
    return key, reserve_credits(key, held)


def balance(key) -> tuple:
    key.refresh_from_db()
    return key.credits, key.api_request_count, key.request_count


def test_the_log_and_the_charge_land_in_one_write(postgres):
    key, held = held_key()
    log = entry(key_id=key.pk, credits_charged=1)
    record_request(log, Settlement(held, used=1, miner_calls=3))
    assert balance(key) == (9, 1, 3)  # 3 held, 2 given back; the call and its 3 miner calls counted
    assert Request.objects.get(pk=log.id).credits_charged == 1


def test_a_stream_is_settled_once_by_its_early_record_not_again_by_the_rewrite(postgres):
    key, held = held_key(held=1)
    settlement = Settlement(held, used=1, miner_calls=1)
    log = entry(key_id=key.pk, credits_charged=1)
    record_request(log, settlement)
    log.status = 200
    rewrite_request(log, settlement)
    rewrite_request(log, settlement)
    assert balance(key) == (9, 1, 1)
    assert Request.objects.filter(pk=log.id).count() == 1


def test_the_rewrite_settles_when_the_early_record_never_landed(postgres):
    key, held = held_key(held=2)
    rewrite_request(entry(key_id=key.pk), Settlement(held, used=0, miner_calls=1))
    assert balance(key) == (10, 1, 1)


def test_nul_characters_from_a_client_or_a_miner_do_not_lose_the_log(postgres):
    log = entry(miners=[MinerLog(1, "5A", True, response="a\x00b", error="")])
    log.messages = [{"role": "user", "content": "x\x00y"}]
    record_request(log)
    saved = Request.objects.get(pk=log.id)
    assert saved.messages == [{"role": "user", "content": "xy"}]
    assert MinerResponse.objects.get(request=saved).response == "ab"


def test_a_refused_record_is_kept_without_its_key_and_still_settled(postgres):
    """A key deleted while its call was running: the log can't point at it
    (foreign key), so the request is logged without it rather than lost."""
    key, held = held_key()
    log = entry(key_id=key.pk, miners=[MinerLog(1, "5A", True, response="secret answer")])
    ApiKey.objects.filter(pk=key.pk).delete()
    async_to_sync(write_request_log)(log, Settlement(held, used=1))
    saved = Request.objects.get(pk=log.id)
    assert saved.key_id is None and saved.messages == []
    assert MinerResponse.objects.get(request=saved).response == ""


# --- how long a call waits for the disk -------------------------------------------------


def wal_flushes() -> int:
    """PostgreSQL's count of WAL flushes to disk, this connection's included."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")  # this backend's pending counts are reported as the statement ends
        cursor.execute("SELECT wal_sync FROM pg_stat_wal")
        return cursor.fetchone()[0]


def calls(n: int) -> int:
    """WAL flushes that ``n`` calls (a hold, then the log and its settlement) cost."""
    key = ApiKeyFactory(credits=10 * n)
    before = wal_flushes()
    for _ in range(n):
        record_request(entry(key_id=key.pk, credits_charged=1), Settlement(reserve_credits(key, 1), used=1))
    return wal_flushes() - before


def test_with_synchronous_commit_each_log_waits_for_the_disk_and_the_hold_does_not(postgres, settings):
    settings.LOG_SYNCHRONOUS_COMMIT = True
    assert 20 <= calls(20) < 30  # one flush a call: the log's, which carries its hold with it


def test_by_default_no_call_waits_for_the_disk(postgres, settings):
    settings.LOG_SYNCHRONOUS_COMMIT = False
    assert calls(20) < 5  # the WAL writer's own flushes, a few times a second
    assert Request.objects.count() == 20
