"""The hand-written credit statements (keys/credits.py), run as they are
against PostgreSQL: what they do to a key's balance and counters, and that
they still name the columns the database has."""

from __future__ import annotations

import pytest
from django.db import connection

from keys.credits import _RESERVE_SQL, _RESERVE_SQL_PG, SETTLE_SQL, Reservation, Settlement, settle_sql_if
from keys.models import ApiKey
from tests.conftest import missing_service
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db

RESERVE = pytest.mark.parametrize("sql", [_RESERVE_SQL, _RESERVE_SQL_PG], ids=["portable", "postgresql"])


@pytest.fixture(autouse=True)
def pg(db):
    # The statements are PostgreSQL's hot path; SQLite would not test them.
    if connection.vendor != "postgresql":
        missing_service("PostgreSQL")


def run(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def state(key: ApiKey) -> tuple:
    key.refresh_from_db()
    return key.credits, key.api_request_count, key.request_count, key.last_used_at


# --- reserve ---------------------------------------------------------------------------


@RESERVE
def test_reserve_takes_the_credits_when_the_key_has_enough(sql):
    key = ApiKeyFactory(credits=10)
    assert run(sql, [3, key.pk, 3]) == 1
    assert state(key) == (7, 0, 0, None)  # only the balance moves; the call is counted at settlement
    assert run(sql, [7, key.pk, 7]) == 1  # all that is left may be taken
    assert state(key)[0] == 0


@RESERVE
def test_reserve_changes_nothing_when_the_key_is_short(sql):
    key = ApiKeyFactory(credits=2)
    assert run(sql, [3, key.pk, 3]) == 0  # rowcount 0 is how the caller learns it was refused
    assert state(key) == (2, 0, 0, None)


@RESERVE
def test_reserve_leaves_an_unlimited_key_unlimited(sql):
    key = ApiKeyFactory(credits=None)
    assert run(sql, [3, key.pk, 3]) == 0  # NULL >= n is not true: nothing to take from
    assert state(key)[0] is None


@RESERVE
def test_reserve_touches_only_its_own_key(sql):
    key, other = ApiKeyFactory(credits=5), ApiKeyFactory(credits=5)
    assert run(sql, [1, key.pk, 1]) == 1
    assert (state(key)[0], state(other)[0]) == (4, 5)


def test_the_postgresql_reserve_does_not_wait_for_the_disk():
    # Its commit is flushed by the settling statement after it; the setting is
    # local to the transaction (the test's, here), so SHOW sees it afterwards.
    key = ApiKeyFactory(credits=5)
    assert synchronous_commit() == "on"
    assert run(_RESERVE_SQL_PG, [1, key.pk, 1]) == 1
    assert synchronous_commit() == "off"


def test_the_portable_reserve_leaves_the_commit_mode_alone():
    key = ApiKeyFactory(credits=5)
    assert run(_RESERVE_SQL, [1, key.pk, 1]) == 1
    assert synchronous_commit() == "on"


# --- settle ----------------------------------------------------------------------------


def test_settle_gives_back_the_refund_and_counts_the_call():
    key = ApiKeyFactory(credits=7)  # 3 of 10 held
    settlement = Settlement(Reservation(key.pk, held=3), used=1, miner_calls=4)
    assert run(SETTLE_SQL, settlement.params()) == 1
    credits, calls, miner_calls, last_used = state(key)
    assert (credits, calls, miner_calls) == (9, 1, 4)
    assert last_used is not None

    again = Settlement(Reservation(key.pk, held=2), used=2, miner_calls=1)
    assert run(SETTLE_SQL, again.params()) == 1  # counters add up, they are not overwritten
    assert state(key)[:3] == (9, 2, 5)


def test_settle_keeps_an_unlimited_key_unlimited_and_still_counts_it():
    key = ApiKeyFactory(credits=None)
    assert run(SETTLE_SQL, Settlement(Reservation(key.pk, held=0), used=5, miner_calls=2).params()) == 1
    credits, calls, miner_calls, last_used = state(key)
    assert (credits, calls, miner_calls) == (None, 1, 2)
    assert last_used is not None


def test_settle_touches_only_its_own_key():
    key, other = ApiKeyFactory(credits=0), ApiKeyFactory(credits=0)
    run(SETTLE_SQL, Settlement(Reservation(key.pk, held=2), used=0, miner_calls=1).params())
    assert state(key)[:3] == (2, 1, 1)
    assert state(other) == (0, 0, 0, None)


def test_a_conditional_settlement_changes_nothing_when_its_condition_is_false():
    key = ApiKeyFactory(credits=7)
    settlement = Settlement(Reservation(key.pk, held=3), used=1, miner_calls=2)
    assert run(settle_sql_if("1 = 0"), settlement.params()) == 0
    assert state(key) == (7, 0, 0, None)
    # The same statement with a true condition does settle: the false case
    # above is the condition's doing, not a statement that never matches.
    assert run(settle_sql_if("1 = 1"), settlement.params()) == 1
    assert state(key)[:3] == (9, 1, 2)


# --- the statements name real columns --------------------------------------------------


def statements(key_id: int) -> dict[str, tuple[str, list]]:
    settle = Settlement(Reservation(key_id, held=1), used=1, miner_calls=1).params()
    return {
        "reserve": (_RESERVE_SQL, [1, key_id, 1]),
        "reserve_pg": (_RESERVE_SQL_PG, [1, key_id, 1]),
        "settle": (SETTLE_SQL, settle),
        "settle_if": (settle_sql_if("true"), settle),
    }


@pytest.mark.parametrize("name", ["reserve", "reserve_pg", "settle", "settle_if"])
def test_every_statement_names_only_columns_the_database_has(name):
    # EXPLAIN plans without running: PostgreSQL resolves every table and
    # column, so a field renamed in the model but not in the schema built by
    # the migrations (or a name typed by hand) fails here.
    key = ApiKeyFactory(credits=5)
    sql, params = statements(key.pk)[name]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        assert cursor.fetchall()
    assert state(key) == (5, 0, 0, None)
