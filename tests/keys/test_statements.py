"""The hand-written credit statements (keys/credits.py), run as they are
against PostgreSQL: what they do to a key's balance, counters and ledger,
and that they still name the columns the database has."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from keys.credits import _RESERVE_SQL, SETTLE_SQL, Reservation, Settlement, _reserve_params, settle_ctes
from keys.models import ApiKey, CreditEntry
from tests.conftest import missing_service
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def pg(db):
    # The statements are PostgreSQL's hot path; SQLite would not test them.
    if connection.vendor != "postgresql":
        missing_service("PostgreSQL")


def fetch(sql: str, params: list) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def state(key: ApiKey) -> tuple:
    key.refresh_from_db()
    return key.credits, key.api_request_count, key.request_count, key.last_used_at


def entries(key: ApiKey) -> list[tuple]:
    return list(CreditEntry.objects.filter(key_id=key.pk).order_by("id").values_list("kind", "amount"))


def reserve(key: ApiKey, n: int, request_id: uuid.UUID | None = None) -> tuple:
    return fetch(_RESERVE_SQL, _reserve_params(key, n, request_id or uuid.uuid4(), 10))[:2]


# --- reserve ---------------------------------------------------------------------------


def test_reserve_takes_the_credits_and_writes_the_hold():
    key = ApiKeyFactory(credits=10)
    request_id = uuid.uuid4()
    assert reserve(key, 3, request_id) == (1, False)
    assert state(key) == (7, 0, 0, None)  # only the balance moves; the call is counted at settlement
    hold = CreditEntry.objects.get(key_id=key.pk)
    assert (hold.kind, hold.amount, hold.request_id) == ("hold", -3, request_id)
    assert hold.expires_at > hold.created_at
    assert reserve(key, 7) == (1, False)  # all that is left may be taken
    assert state(key)[0] == 0


def test_reserve_changes_nothing_when_the_key_is_short():
    key = ApiKeyFactory(credits=2)
    assert reserve(key, 3) == (0, False)  # not held, and not unlimited: refused
    assert state(key) == (2, 0, 0, None) and entries(key) == []


def test_reserve_reads_an_unlimited_key_from_its_row():
    key = ApiKeyFactory(credits=None)
    assert reserve(key, 3) == (0, True)  # nothing held, and the row says why
    assert state(key)[0] is None and entries(key) == []


def test_reserve_of_a_key_that_is_gone_says_so():
    key = ApiKeyFactory(credits=5)
    ApiKey.objects.filter(pk=key.pk).delete()
    assert reserve(key, 1) == (0, None)


def test_reserve_touches_only_its_own_key():
    key, other = ApiKeyFactory(credits=5), ApiKeyFactory(credits=5)
    assert reserve(key, 1) == (1, False)
    assert (state(key)[0], state(other)[0]) == (4, 5) and entries(other) == []


def test_reserve_does_not_wait_for_the_disk():
    # Its commit is flushed by the settling statement after it; the setting is
    # local to the transaction (the test's, here), so SHOW sees it afterwards.
    key = ApiKeyFactory(credits=5)
    assert synchronous_commit() == "on"
    reserve(key, 1)
    assert synchronous_commit() == "off"


# --- settle ----------------------------------------------------------------------------


def test_settle_gives_back_the_refund_counts_the_call_and_ends_the_hold():
    key = ApiKeyFactory(credits=7)  # 3 of 10 held
    held = Reservation(key.pk, held=3)
    assert fetch(SETTLE_SQL, Settlement(held, used=1, miner_calls=4).params()) == (1,)
    credits, calls, miner_calls, last_used = state(key)
    assert (credits, calls, miner_calls) == (9, 1, 4) and last_used is not None
    assert entries(key) == [("settle", 2)]
    assert CreditEntry.objects.get(key_id=key.pk).ends == held.request_id


def test_a_hold_is_settled_once():
    key = ApiKeyFactory(credits=7)
    settlement = Settlement(Reservation(key.pk, held=3), used=1, miner_calls=1)
    fetch(SETTLE_SQL, settlement.params())
    assert fetch(SETTLE_SQL, settlement.params()) == (0,)  # its end is written already: nothing again
    assert state(key)[:3] == (9, 1, 1) and entries(key) == [("settle", 2)]


def test_settle_keeps_an_unlimited_key_unlimited_and_still_counts_it():
    key = ApiKeyFactory(credits=None)
    assert fetch(SETTLE_SQL, Settlement(Reservation(key.pk, held=0), used=5, miner_calls=2).params()) == (1,)
    credits, calls, miner_calls, last_used = state(key)
    assert (credits, calls, miner_calls) == (None, 1, 2) and last_used is not None
    assert entries(key) == []  # nothing was held, so nothing ends


def test_settle_touches_only_its_own_key():
    key, other = ApiKeyFactory(credits=0), ApiKeyFactory(credits=0)
    fetch(SETTLE_SQL, Settlement(Reservation(key.pk, held=2), used=0, miner_calls=1).params())
    assert state(key)[:3] == (2, 1, 1)
    assert state(other) == (0, 0, 0, None)


def test_a_conditional_settlement_changes_nothing_when_its_condition_is_false():
    key = ApiKeyFactory(credits=7)
    settlement = Settlement(Reservation(key.pk, held=3), used=1, miner_calls=2)
    never = f"WITH {settle_ctes('1 = 0')} SELECT count(*) FROM settled"
    assert fetch(never, settlement.params()) == (0,)
    assert state(key) == (7, 0, 0, None) and entries(key) == []
    # The same statement with a true condition does settle: the false case
    # above is the condition's doing, not a statement that never matches.
    always = f"WITH {settle_ctes('1 = 1')} SELECT count(*) FROM settled"
    assert fetch(always, settlement.params()) == (1,)
    assert state(key)[:3] == (9, 1, 2)


# --- the statements name real columns --------------------------------------------------


@pytest.mark.parametrize("name", ["reserve", "settle"])
def test_every_statement_names_only_columns_the_database_has(name):
    # EXPLAIN plans without running: PostgreSQL resolves every table and
    # column, so a field renamed in the model but not in the schema built by
    # the migrations (or a name typed by hand) fails here.
    key = ApiKeyFactory(credits=5)
    sql, params = {
        "reserve": (_RESERVE_SQL, _reserve_params(key, 1, uuid.uuid4(), 10)),
        "settle": (SETTLE_SQL, Settlement(Reservation(key.pk, held=1), used=1, miner_calls=1).params()),
    }[name]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        assert cursor.fetchall()
    assert state(key) == (5, 0, 0, None) and entries(key) == []
