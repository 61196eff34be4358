"""Stripe's webhook: only events signed with the endpoint's secret count;
each credits or takes back once, whatever the duplicates and the order; the
ledger always sums to the balance."""

from __future__ import annotations

import time

import pytest

from billing.models import Payment, StripeEvent
from keys.credits import audit_credits
from keys.models import CreditEntry
from tests.billing.conftest import balance
from tests.billing.stripe_events import WEBHOOK_URL, charge_refunded, dispute, intent_succeeded, post, signed

pytestmark = pytest.mark.usefixtures("stripe_configured")
GRANT = 100  # the sign-up grant (CHAT_SIGNUP_CREDITS)


@pytest.fixture(autouse=True)
def signup_grant(settings):
    settings.CHAT_SIGNUP_CREDITS = GRANT


def _paid(started) -> Payment:
    started.refresh_from_db()
    return started


def test_a_succeeded_payment_credits_its_pack_once(client, buyer, started):
    r = post(client, intent_succeeded(started))
    assert r.status_code == 200 and r.json()["outcome"].startswith("credited 1000")
    assert balance(buyer) == GRANT + 1000
    payment = _paid(started)
    assert payment.status == Payment.SUCCEEDED and payment.stripe_charge.startswith("ch_")
    entry = CreditEntry.objects.get(key_id=payment.key_id, kind=CreditEntry.PURCHASE)
    assert entry.amount == 1000 and entry.actor == "stripe" and str(payment.pk) in entry.reason
    assert audit_credits() == []


def test_a_replayed_event_and_a_second_event_for_the_same_payment_add_nothing(client, buyer, started):
    succeeded = intent_succeeded(started)
    assert post(client, succeeded).status_code == 200
    replay = post(client, succeeded)
    assert replay.status_code == 200 and replay.json()["outcome"].startswith("duplicate")
    # Stripe may send the news twice under two event ids (a retry of a resent event).
    again = post(client, intent_succeeded(started))
    assert again.status_code == 200 and again.json()["outcome"] == "already credited"
    assert balance(buyer) == GRANT + 1000
    assert CreditEntry.objects.filter(kind=CreditEntry.PURCHASE).count() == 1
    assert StripeEvent.objects.count() == 2 and audit_credits() == []


@pytest.mark.parametrize(
    "header",
    [None, "t=1,v1=deadbeef", "not a signature"],
    ids=["missing", "forged", "garbled"],
)
def test_an_unsigned_or_forged_event_is_refused_and_credits_nothing(client, buyer, started, header):
    body, _ = signed(intent_succeeded(started))
    extra = {} if header is None else {"HTTP_STRIPE_SIGNATURE": header}
    r = client.post(WEBHOOK_URL, body, content_type="application/json", **extra)
    assert r.status_code == 400 and r.json()["code"] == "invalid_signature"
    assert balance(buyer) == GRANT and StripeEvent.objects.count() == 0


def test_an_event_signed_with_another_secret_or_long_ago_is_refused(client, buyer, started):
    other = post(client, intent_succeeded(started), secret="whsec_someone_else")
    stale = post(client, intent_succeeded(started), at=int(time.time()) - 3600)
    assert (other.status_code, stale.status_code) == (400, 400)
    assert "timestamp" in stale.json()["detail"].lower()
    assert balance(buyer) == GRANT and not _paid(started).credited_at


def test_a_tampered_body_fails_its_signature(client, buyer, started):
    body, header = signed(intent_succeeded(started))
    tampered = body.replace(b'"amount": 500', b'"amount": 5')
    r = client.post(WEBHOOK_URL, tampered, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert r.status_code == 400 and balance(buyer) == GRANT


def test_a_refund_takes_the_credits_back_through_the_ledger_even_below_zero(client, buyer, started):
    post(client, intent_succeeded(started))
    key = _paid(started).key
    key.__class__.objects.filter(pk=key.pk).update(credits=GRANT + 100)  # spent 900 of them…
    CreditEntry.objects.create(key=key, kind=CreditEntry.ADJUST, amount=-900, reason="spent in this test")

    r = post(client, charge_refunded(started, refunded=500))
    assert r.status_code == 200
    assert balance(buyer) == GRANT + 100 - 1000  # …so the balance goes below zero
    payment = _paid(started)
    assert payment.status == Payment.REFUNDED and payment.credits_taken_back == 1000
    assert CreditEntry.objects.get(kind=CreditEntry.REFUND).amount == -1000
    assert audit_credits() == []


def test_partial_refunds_take_back_their_share_once_in_any_order(client, buyer, started):
    post(client, intent_succeeded(started))
    post(client, charge_refunded(started, refunded=300))  # 300 of 500 cents: 600 credits
    post(client, charge_refunded(started, refunded=100))  # an older total, arriving late
    assert balance(buyer) == GRANT + 400
    assert _paid(started).status == Payment.PARTLY_REFUNDED
    post(client, charge_refunded(started, refunded=500))
    assert balance(buyer) == GRANT and _paid(started).status == Payment.REFUNDED
    assert audit_credits() == []


def test_a_refund_before_the_payment_succeeded_is_applied_when_it_does(client, buyer, started):
    r = post(client, charge_refunded(started, refunded=500))
    assert r.json()["outcome"] == "nothing to take back yet" and balance(buyer) == GRANT
    post(client, intent_succeeded(started))
    assert balance(buyer) == GRANT
    kinds = list(CreditEntry.objects.filter(key_id=started.key_id).order_by("id").values_list("kind", "amount"))
    assert kinds[-2:] == [(CreditEntry.PURCHASE, 1000), (CreditEntry.REFUND, -1000)]
    assert _paid(started).status == Payment.REFUNDED and audit_credits() == []


def test_a_dispute_takes_everything_back_and_a_won_dispute_returns_it(client, buyer, started):
    post(client, intent_succeeded(started))
    post(client, dispute(started))
    assert balance(buyer) == GRANT and _paid(started).status == Payment.DISPUTED
    post(client, dispute(started, "charge.dispute.closed", status="won"))
    assert balance(buyer) == GRANT + 1000 and _paid(started).status == Payment.SUCCEEDED
    assert audit_credits() == []


def test_the_webhook_can_beat_the_page_that_started_the_payment(client, buyer, started):
    """The intent is known only by the payment id in its metadata until the page saves it."""
    intent = started.stripe_payment_intent
    Payment.objects.filter(pk=started.pk).update(stripe_payment_intent=None)
    r = post(client, intent_succeeded(started, id=intent))
    assert r.status_code == 200 and balance(buyer) == GRANT + 1000
    assert _paid(started).stripe_payment_intent == intent


def test_an_amount_other_than_the_packs_credits_nothing(client, buyer, started):
    r = post(client, intent_succeeded(started, amount=50, amount_received=50))
    assert r.status_code == 200 and "not credited" in r.json()["outcome"]
    assert balance(buyer) == GRANT and _paid(started).status == Payment.PENDING


def test_events_of_other_payments_and_kinds_are_acknowledged_and_ignored(client, buyer, started):
    other = intent_succeeded(started, id="pi_not_ours", metadata={})
    assert post(client, other).json()["outcome"] == "ignored: not a payment of this endpoint"
    assert post(client, {**other, "id": "evt_x", "type": "customer.created"}).json()["outcome"].startswith("ignored")
    assert balance(buyer) == GRANT


def test_without_a_webhook_secret_the_webhook_is_unavailable(client, buyer, started):
    from endpoint.core.config import do_set_config

    do_set_config("stripe_webhook_secret", "")
    r = post(client, intent_succeeded(started))
    assert r.status_code == 503 and r.json()["code"] == "PaymentsNotConfigured"
    assert balance(buyer) == GRANT
