"""The hand-written log statements (logs/services.py): each of the eight
variants of the one-statement write, run as it is against PostgreSQL — the
rows it writes, the settlement it carries, and that neither lands twice."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from keys.credits import Settlement, reserve_credits
from keys.models import ApiKey
from logs.models import MinerResponse, Request
from logs.services import _SQL, MinerLog, RequestLog, _statement, record_request
from tests.conftest import missing_service
from tests.factories import ApiKeyFactory, UserFactory

# Each statement commits on its own in production, and whether the request row
# was inserted or updated (xmax = 0) is judged across those commits: the test
# runs them the same way rather than inside one test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

REPLACE = pytest.mark.parametrize("replace", [False, True], ids=["insert", "replace"])
SETTLE = pytest.mark.parametrize("settle", [False, True], ids=["no_settle", "settle"])
DURABLE = pytest.mark.parametrize("durable", [False, True], ids=["async_commit", "durable"])


@pytest.fixture(autouse=True)
def pg(transactional_db):
    if connection.vendor != "postgresql":
        missing_service("PostgreSQL")


def entry(key: ApiKey | None = None, **fields) -> RequestLog:
    defaults = {
        "route": "/v1/chat/completions",
        "started_at": timezone.now(),
        "key_id": key.pk if key else None,
        "messages": [{"role": "user", "content": "What is 1+1?"}],
        "strategy": "top_n:2",
        "status": 200,
        "credits_charged": 1,
        "elapsed_ms": 812.5,
        "client_ip": "203.0.113.7",
        "client_request_id": "trace-7f3a/run.2",
        "prompt_tokens": 12,
        "completion_tokens": 3,
        "miners": [
            MinerLog(1, "5Hot1", True, response="2", status=200, response_ms=120.5),
            MinerLog(7, "5Hot7", False, error="timed out", status=None, response_ms=3000.0),
        ],
    }
    return RequestLog(**{**defaults, **fields})


def held(credits: int = 10, hold: int = 3) -> tuple[ApiKey, Settlement]:
    """A key with ``hold`` of its credits reserved, and the settlement of a
    call that used 1 credit and called 2 miners."""
    key = ApiKeyFactory(credits=credits)
    return key, Settlement(reserve_credits(key, hold), used=1, miner_calls=2)


def execute(log: RequestLog, settlement: Settlement | None, *, replace: bool, durable: bool) -> None:
    sql, params = _statement(log, settlement, replace=replace)
    # The variant under test is the one _statement picked.
    assert sql is _SQL[replace, settlement is not None, durable]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def balance(key: ApiKey) -> tuple:
    key.refresh_from_db()
    return key.credits, key.api_request_count, key.request_count


def saved_request(log: RequestLog) -> tuple:
    row = Request.objects.get(pk=log.id)
    return (
        row.key_id, row.user_id, row.route, row.messages, row.strategy, row.status, row.api_error,
        row.credits_charged, row.started_at, row.elapsed_ms, row.client_ip, row.client_request_id,
        row.prompt_tokens, row.completion_tokens,
    )  # fmt: skip


def expected_request(log: RequestLog) -> tuple:
    return (
        log.key_id, log.user_id, log.route, log.messages, log.strategy, log.status, log.api_error,
        log.credits_charged, log.started_at, log.elapsed_ms, log.client_ip, log.client_request_id,
        log.prompt_tokens, log.completion_tokens,
    )  # fmt: skip


def saved_miners(log: RequestLog) -> list[tuple]:
    rows = MinerResponse.objects.filter(request_id=log.id).order_by("uid")
    return [(m.uid, m.hotkey, m.is_success, m.response, m.error, m.status, m.response_ms) for m in rows]


def expected_miners(log: RequestLog) -> list[tuple]:
    miners = sorted(log.miners, key=lambda m: m.uid)
    return [(m.uid, m.hotkey, m.is_success, m.response, m.error, m.status, m.response_ms) for m in miners]


@REPLACE
@SETTLE
@DURABLE
def test_a_new_request_is_written_with_its_miners_and_settled_once(settings, replace, settle, durable):
    settings.LOG_SYNCHRONOUS_COMMIT = durable
    key, settlement = held()
    log = entry(key, user_id=UserFactory().pk)

    execute(log, settlement if settle else None, replace=replace, durable=durable)

    assert saved_request(log) == expected_request(log)
    assert saved_miners(log) == expected_miners(log)
    # 3 held, 1 used: 2 come back, and the call and its 2 miner calls are counted.
    assert balance(key) == ((9, 1, 2) if settle else (7, 0, 0))


@REPLACE
@SETTLE
@DURABLE
def test_a_request_without_miners_is_still_written_and_settled(settings, replace, settle, durable):
    # A call refused before any miner was asked: the miner part inserts
    # nothing, and the request and its charge must land all the same.
    settings.LOG_SYNCHRONOUS_COMMIT = durable
    key, settlement = held()
    log = entry(key, status=503, api_error="NoMinersAvailable", miners=[])

    execute(log, settlement if settle else None, replace=replace, durable=durable)

    assert saved_request(log) == expected_request(log)
    assert saved_miners(log) == []
    assert balance(key) == ((9, 1, 2) if settle else (7, 0, 0))


@SETTLE
@DURABLE
def test_a_replace_swaps_the_early_record_and_does_not_settle_it_again(settings, settle, durable):
    settings.LOG_SYNCHRONOUS_COMMIT = durable
    key, settlement = held()
    early = entry(
        key, status=200, credits_charged=1, miners=[MinerLog(1, "5Hot1", True, response="par")], completion_tokens=None
    )
    record_request(early, settlement if settle else None)  # a stream's record at its first content
    after_early = balance(key)
    assert after_early == ((9, 1, 2) if settle else (7, 0, 0))

    final = entry(
        key,
        id=early.id,
        started_at=early.started_at,
        status=499,
        api_error="ClientClosedRequest",
        credits_charged=1,
        elapsed_ms=4321.0,
        completion_tokens=7,  # known once the stream ended
        strategy="uids:1,9",
        messages=[{"role": "user", "content": "What is 1+1?"}, {"role": "assistant", "content": "2"}],
        miners=[
            MinerLog(1, "5Hot1", True, response="partial answer, then all of it", status=200, response_ms=950.0),
            MinerLog(9, "5Hot9", False, error="HTTP 500", status=500, response_ms=10.0),
        ],
    )
    execute(final, settlement if settle else None, replace=True, durable=durable)
    execute(final, settlement if settle else None, replace=True, durable=durable)  # a retried rewrite

    assert Request.objects.filter(pk=early.id).count() == 1
    assert saved_request(final) == expected_request(final)
    assert saved_miners(final) == expected_miners(final)  # the early miner row is gone, not kept beside
    assert balance(key) == after_early  # the early record settled the call; the rewrite must not


@SETTLE
@DURABLE
def test_a_new_request_written_twice_is_refused_and_not_charged_twice(settings, settle, durable):
    # Without replace the statement is an INSERT: a second write of the same
    # request fails as a whole, its miner rows and settlement with it.
    settings.LOG_SYNCHRONOUS_COMMIT = durable
    key, settlement = held()
    log = entry(key)
    execute(log, settlement if settle else None, replace=False, durable=durable)
    with pytest.raises(IntegrityError):
        execute(log, settlement if settle else None, replace=False, durable=durable)

    assert Request.objects.filter(pk=log.id).count() == 1
    assert saved_miners(log) == expected_miners(log)
    assert balance(key) == ((9, 1, 2) if settle else (7, 0, 0))


@REPLACE
@SETTLE
def test_only_the_non_durable_variants_let_the_commit_skip_the_disk(settings, replace, settle):
    # Checked inside an outer transaction, where the statement's
    # transaction-local setting is still visible after it runs.
    def commit_mode_after(durable: bool) -> str:
        settings.LOG_SYNCHRONOUS_COMMIT = durable
        key, settlement = held()
        with transaction.atomic(), connection.cursor() as cursor:
            execute(entry(key), settlement if settle else None, replace=replace, durable=durable)
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        default = cursor.fetchone()[0]
    assert default == "on"  # otherwise the check below can't tell the variants apart
    assert commit_mode_after(durable=True) == default
    assert commit_mode_after(durable=False) == "off"


@pytest.mark.parametrize("variant", sorted(_SQL), ids=lambda v: "-".join(map(str, v)))
def test_every_variant_names_only_columns_the_database_has(variant):
    # EXPLAIN plans without running: PostgreSQL resolves every table, column
    # and cast, so a model field renamed without the schema following (or a
    # name typed by hand) fails here.
    replace, settle, durable = variant
    key, settlement = held()
    log = entry(key)
    # _statement picks durable by the setting; the parameters are the same for both.
    _, params = _statement(log, settlement if settle else None, replace=replace)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {_SQL[variant]}", params)
        assert cursor.fetchall()
    assert not Request.objects.filter(pk=log.id).exists()
    assert balance(key) == (7, 0, 0)


def test_the_searches_by_error_and_by_user_find_their_partial_indexes():
    # Answered calls and operators' keys skip these indexes when a row is
    # written; the admin's and the user's searches must still reach them.
    user = UserFactory()
    queries = {
        "request_error_time": Request.objects.filter(api_error="AllMinersFailed").order_by("-started_at"),
        "request_user": Request.objects.filter(user=user),
    }
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            for index, query in queries.items():
                assert index in query.explain(), query.query
        finally:
            cursor.execute("RESET enable_seqscan")
