"""The credit ledger: every movement of a key's credits is a row, a limited
key's balance is always the sum of its rows, holds end exactly once, and
`manage.py credits audit` says when a balance and its ledger disagree."""

from __future__ import annotations

import pytest

from endpoint.core.errors import APIKeyNotEnoughCredits
from keys.credits import (
    Reservation,
    audit_credits,
    do_adjust_credits,
    ledger_balance,
    open_holds,
    reserve_credits,
    settle_credits,
)
from keys.models import ApiKey, CreditEntry
from keys.services import do_create_key, do_edit_key
from logs.models import Request
from logs.services import ABANDONED, release_abandoned_calls
from tests.commands import manage

pytestmark = pytest.mark.django_db


def kinds(key: ApiKey) -> list[tuple[str, int]]:
    return list(CreditEntry.objects.filter(key_id=key.pk).order_by("id").values_list("kind", "amount"))


def balanced(key: ApiKey) -> bool:
    key.refresh_from_db()
    return key.credits == ledger_balance(key)


def test_every_movement_is_a_row_and_the_rows_sum_to_the_balance():
    key = do_create_key(name="shop", credits=100).key
    do_adjust_credits(key, 50, reason="bought 50", actor="alice")
    do_adjust_credits(key, -20, reason="goodwill reversed", actor="bob")
    held = reserve_credits(key, 10)
    settle_credits(held, used=3, miner_calls=2)
    do_edit_key(key, credits=500)

    assert kinds(key) == [
        ("grant", 100), ("topup", 50), ("adjust", -20), ("hold", -10), ("settle", 7), ("adjust", 500 - 127),
    ]  # fmt: skip
    assert balanced(key) and key.credits == 500
    topup = CreditEntry.objects.get(key_id=key.pk, kind="topup")
    assert (topup.actor, topup.reason) == ("alice", "bought 50")
    assert audit_credits() == []


def test_a_hold_ends_once_even_when_settled_twice():
    key = do_create_key(credits=10).key
    held = reserve_credits(key, 4)
    settle_credits(held, used=1)
    settle_credits(held, used=1)  # a retried settlement must not refund again
    key.refresh_from_db()
    assert key.credits == 9 and balanced(key)


def test_an_unlimited_key_made_limited_is_refused_even_by_a_stale_copy():
    """Whether a key is unlimited is read by the hold itself, not from a cached copy of the key."""
    key = do_create_key(credits=None).key
    stale = ApiKey.objects.get(pk=key.pk)  # what a worker's cache holds: unlimited
    do_edit_key(key, credits=0)
    with pytest.raises(APIKeyNotEnoughCredits):
        reserve_credits(stale, 1)
    assert balanced(key) and key.credits == 0


def test_a_limited_key_made_unlimited_holds_nothing():
    key = do_create_key(credits=5).key
    stale = ApiKey.objects.get(pk=key.pk)
    do_edit_key(key, credits=None)
    reservation = reserve_credits(stale, 3)
    assert reservation.held == 0
    key.refresh_from_db()
    assert key.credits is None


def test_the_sweeper_releases_a_hold_nobody_settled_and_logs_the_call_once(settings):
    settings.HOLD_GRACE_SECONDS = 0
    key = do_create_key(credits=10).key
    orphan = reserve_credits(key, 6, seconds=0)  # its server "died": nobody settles it
    assert open_holds()[1] == 1

    released = release_abandoned_calls()
    assert [(h.key_id, h.credits) for h in released] == [(key.pk, 6)]
    key.refresh_from_db()
    assert key.credits == 10 and balanced(key)
    log = Request.objects.get(pk=orphan.request_id)
    assert (log.api_error, log.credits_charged, log.key_id) == (ABANDONED, 0, key.pk)

    assert release_abandoned_calls() == []  # ended once
    settle_credits(orphan, used=6)  # the call turns up late: nothing is taken twice or refunded twice
    key.refresh_from_db()
    assert key.credits == 10 and balanced(key)
    assert Request.objects.filter(pk=orphan.request_id).count() == 1


def test_the_sweeper_leaves_holds_within_their_deadline(settings):
    settings.HOLD_GRACE_SECONDS = 60
    key = do_create_key(credits=10).key
    reserve_credits(key, 6, seconds=5)
    assert release_abandoned_calls() == []
    key.refresh_from_db()
    assert key.credits == 4
    assert open_holds() == (1, 0)


def test_audit_command_is_clean_then_names_the_key_that_disagrees():
    key = do_create_key(name="audited", credits=10).key
    do_create_key(name="unlimited", credits=None)
    code, out, _ = manage("credits", "audit")
    assert code == 0 and "ledger and balances agree" in out

    ApiKey.objects.filter(pk=key.pk).update(credits=15)  # a write that went around the ledger
    code, out, err = manage("credits", "audit")
    assert code == 1
    assert key.prefix in out and "+5" in out
    assert "1 key(s)" in err


def test_sweep_command_says_what_it_released(settings):
    settings.HOLD_GRACE_SECONDS = 0
    key = do_create_key(credits=10).key
    reserve_credits(key, 3, seconds=0)
    code, out, _ = manage("credits", "sweep")
    assert code == 0 and "released 1 hold(s), 3 credit(s)" in out
    assert manage("credits", "audit")[0] == 0


def test_reservation_without_a_request_gets_its_own_id():
    key = do_create_key(credits=3).key
    first, second = reserve_credits(key, 1), reserve_credits(key, 1)
    assert isinstance(first, Reservation) and first.request_id != second.request_id
    assert CreditEntry.objects.filter(kind="hold", key_id=key.pk).count() == 2


def test_refunds_of_calls_in_flight_on_a_revoked_key_go_back_to_the_balance(django_user_model):
    from chat.services import chat_account
    from keys.credits import forward_late_refunds
    from keys.user_keys import do_create_user_key, do_revoke_user_key

    user = django_user_model.objects.create_user("payer")
    balance = chat_account(user).key
    start = ApiKey.objects.get(pk=balance.pk).credits
    mine = do_create_user_key(user, "laptop", 10, balance=balance).key
    in_flight = reserve_credits(mine, 4)  # a call still running when the key is revoked
    do_revoke_user_key(mine, balance=balance)
    assert ApiKey.objects.get(pk=balance.pk).credits == start - 4

    settle_credits(in_flight, used=1)  # it ends: 3 come back, to the revoked key first
    assert forward_late_refunds() == [(mine.pk, balance.pk, 3)]
    assert ApiKey.objects.get(pk=balance.pk).credits == start - 1  # only the answer was paid for
    assert ApiKey.objects.get(pk=mine.pk).credits == 0
    assert audit_credits() == []
    assert forward_late_refunds() == []


def test_a_revoked_key_enabled_again_keeps_its_credits(django_user_model):
    from chat.services import chat_account
    from keys.credits import forward_late_refunds
    from keys.user_keys import do_create_user_key, do_revoke_user_key

    user = django_user_model.objects.create_user("changed-mind")
    balance = chat_account(user).key
    mine = do_create_user_key(user, "laptop", 5, balance=balance).key
    do_revoke_user_key(mine, balance=balance)
    do_edit_key(ApiKey.objects.get(pk=mine.pk), enabled=True)
    do_adjust_credits(mine, 2, reason="goodwill")
    assert forward_late_refunds() == []
    assert ApiKey.objects.get(pk=mine.pk).credits == 2
