"""/api/admin/keys/{id}/credits/: add or take credits with a reason, in one
conditional UPDATE: exact under concurrency, never below zero."""

from __future__ import annotations

import logging
import threading

from django.db import connection
from rest_framework.test import APIClient

from keys.models import ApiKey
from tests.factories import ApiKeyFactory


def credits_url(key) -> str:
    return f"/api/admin/keys/{key.pk}/credits/"


def test_add_and_take_with_a_reason_logged_with_who(admin_api, caplog):
    key = ApiKeyFactory(credits=10)
    with caplog.at_level(logging.INFO, logger="keys.credits"):
        added = admin_api.post(credits_url(key), {"delta": 40, "reason": "invoice 12"}, format="json")
        taken = admin_api.post(credits_url(key), {"delta": -15, "reason": "refund\nreversed"}, format="json")
    assert (added.status_code, added.json()["credits"]) == (200, 50)
    assert (taken.status_code, taken.json()["credits"]) == (200, 35)
    lines = [r.getMessage() for r in caplog.records if r.name == "keys.credits"]
    assert any(
        "+40" in line and "ops (token)" in line and key.prefix in line and "invoice 12" in line for line in lines
    )
    assert any("-15" in line and "refund reversed" in line for line in lines), lines


def test_taking_more_than_the_key_has_is_409_and_changes_nothing(admin_api):
    key = ApiKeyFactory(credits=5)
    r = admin_api.post(credits_url(key), {"delta": -6, "reason": "oops"}, format="json")
    assert r.status_code == 409
    assert r.json() == {
        "detail": "the key has 5 credits; taking 6 would leave it below zero",
        "code": "not_enough_credits",
    }
    key.refresh_from_db()
    assert key.credits == 5


def test_unlimited_keys_have_no_balance_to_change(admin_api):
    key = ApiKeyFactory(credits=None)
    r = admin_api.post(credits_url(key), {"delta": 5, "reason": "x"}, format="json")
    assert r.status_code == 409
    assert r.json()["code"] == "unlimited_credits"


def test_bad_bodies_are_400_with_field_errors(admin_api):
    key = ApiKeyFactory(credits=5)
    r = admin_api.post(credits_url(key), {"delta": 0}, format="json")
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"delta", "reason"}
    r = admin_api.post(credits_url(key), {"delta": "lots", "reason": "x"}, format="json")
    assert r.status_code == 400 and "delta" in r.json()["errors"]
    assert (
        admin_api.post("/api/admin/keys/424242/credits/", {"delta": 1, "reason": "x"}, format="json").status_code == 404
    )


def _concurrently(calls: list[tuple[int, str]], key, token: str) -> list[int]:
    """POST each (delta, reason) from its own thread and connection, all at once."""
    start = threading.Barrier(len(calls))
    statuses: list[int] = []
    lock = threading.Lock()

    def caller(delta: int, reason: str) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            start.wait(timeout=30)
            r = client.post(credits_url(key), {"delta": delta, "reason": reason}, format="json")
            with lock:
                statuses.append(r.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=caller, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def test_twenty_concurrent_charges_never_go_below_zero(postgres, staff_token):
    key = ApiKeyFactory(credits=10)
    statuses = _concurrently([(-1, "charge")] * 20, key, staff_token)
    assert sorted(statuses) == [200] * 10 + [409] * 10
    assert ApiKey.objects.get(pk=key.pk).credits == 0


def test_concurrent_top_ups_and_charges_sum_exactly(postgres, staff_token):
    key = ApiKeyFactory(credits=100)
    calls = [(5, "top-up")] * 10 + [(-3, "charge")] * 10
    statuses = _concurrently(calls, key, staff_token)
    assert statuses == [200] * 20
    assert ApiKey.objects.get(pk=key.pk).credits == 100 + 10 * 5 - 10 * 3
