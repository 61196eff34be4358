"""Credits move in the database: a key never goes below zero, whatever the
concurrency, and a settled call is charged only what it used."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connection

from endpoint.core.errors import APIKeyNotEnoughCredits
from keys.credits import reserve_credits, settle_credits
from keys.models import ApiKey
from tests.factories import ApiKeyFactory

CALLERS = 100


def _connect_patiently(deadline: float) -> None:
    # 100 connections at once can meet other test runs on the same server
    # ("too many clients"); waiting for a slot only delays the race, it
    # doesn't serialise it.
    while True:
        try:
            connection.ensure_connection()
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_hundred_concurrent_reservations_never_overspend(postgres):
    key = ApiKeyFactory(credits=10)
    start = threading.Barrier(CALLERS)
    outcomes: list[str] = []
    record = threading.Lock()

    def caller() -> None:
        try:
            start.wait(timeout=60)
            _connect_patiently(deadline=time.monotonic() + 30)
            try:
                reserve_credits(key, 1)
                outcome = "reserved"
            except APIKeyNotEnoughCredits:
                outcome = "refused"
            except Exception as exc:  # reported in the assertion below
                outcome = f"error: {exc!r}"
            with record:
                outcomes.append(outcome)
        finally:
            connection.close()

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(set(outcomes)) == ["refused", "reserved"], set(outcomes)
    assert outcomes.count("reserved") == 10
    assert outcomes.count("refused") == 90
    key.refresh_from_db()
    assert key.credits == 0


def test_settle_returns_the_unused_part_and_counts_the_call(db):
    key = ApiKeyFactory(credits=10)
    held = reserve_credits(key, 3)
    assert ApiKey.objects.get(pk=key.pk).credits == 7

    charged = settle_credits(held, used=1, miner_calls=3)

    key.refresh_from_db()
    assert charged == 1
    assert key.credits == 9
    assert (key.api_request_count, key.request_count) == (1, 3)
    assert key.last_used_at is not None


def test_settle_never_charges_more_than_was_held(db):
    key = ApiKeyFactory(credits=2)
    held = reserve_credits(key, 2)
    assert settle_credits(held, used=5) == 2
    key.refresh_from_db()
    assert key.credits == 0  # not -3


def test_failed_call_is_refunded_in_full(db):
    key = ApiKeyFactory(credits=4)
    held = reserve_credits(key, 4)
    assert settle_credits(held, used=0) == 0
    key.refresh_from_db()
    assert key.credits == 4


def test_a_key_without_enough_credits_is_refused_and_keeps_them(db):
    key = ApiKeyFactory(credits=1)
    with pytest.raises(APIKeyNotEnoughCredits):
        reserve_credits(key, 2)
    key.refresh_from_db()
    assert key.credits == 1


def test_unlimited_keys_hold_nothing_and_stay_unlimited(db):
    key = ApiKeyFactory(credits=None)
    held = reserve_credits(key, 50)
    assert held.held == 0
    assert settle_credits(held, used=3) == 3
    key.refresh_from_db()
    assert key.credits is None
    assert key.api_request_count == 1
