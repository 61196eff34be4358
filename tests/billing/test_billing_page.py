"""The billing page and its pay call, short of Stripe (the browser test
pays through localstripe): what is on sale, and refusals that charge nothing."""

from __future__ import annotations

import pytest

from billing.models import CreditPack, Payment
from endpoint.core.config import do_set_config


@pytest.fixture
def signed_in(client, buyer):
    client.force_login(buyer)
    return client


def test_the_page_offers_the_packs_on_sale_once_payments_are_set_up(signed_in, pack):
    CreditPack.objects.create(name="Retired", credits=5, amount=100, active=False)
    assert "Card payments are not set up" in signed_in.get("/app/billing/").text
    do_set_config("stripe_publishable_key", "pk_test_page")
    page = signed_in.get("/app/billing/")
    assert "Starter: 1000 credits for 5.00 USD" in page.text and "Retired" not in page.text
    assert "https://js.stripe.com" in page["Content-Security-Policy"]


def test_paying_for_a_pack_off_sale_or_without_a_card_charges_nothing(signed_in, pack):
    do_set_config("stripe_secret_key", "sk_test_page")
    CreditPack.objects.filter(pk=pack.pk).update(active=False)
    off = signed_in.post("/app/billing/pay/", {"pack": pack.pk, "token": "tok_123"}, content_type="application/json")
    assert off.status_code == 400 and off.json()["error"] == "That credit pack is not on sale; pick another."
    CreditPack.objects.filter(pk=pack.pk).update(active=True)
    no_card = signed_in.post("/app/billing/pay/", {"pack": pack.pk}, content_type="application/json")
    assert no_card.status_code == 400 and no_card.json()["error"] == "Enter your card details first."
    not_a_token = signed_in.post(
        "/app/billing/pay/", {"pack": pack.pk, "token": "4242424242424242"}, content_type="application/json"
    )
    assert not_a_token.status_code == 400  # a card number is never taken here
    assert not Payment.objects.exists()


def test_payment_attempts_beyond_the_limit_are_refused_before_stripe(signed_in, pack, settings):
    settings.CARD_PAYMENT_RATE = "2/h"
    body = {"pack": pack.pk, "token": "tok_123"}
    for _ in range(2):  # refused by the missing Stripe key, but counted
        assert signed_in.post("/app/billing/pay/", body, content_type="application/json").status_code == 503
    refused = signed_in.post("/app/billing/pay/", body, content_type="application/json")
    assert refused.status_code == 429 and refused.json()["error"].startswith("Too many payment attempts")
    assert int(refused["Retry-After"]) > 0


def test_without_a_stripe_key_paying_is_unavailable(signed_in, pack):
    r = signed_in.post("/app/billing/pay/", {"pack": pack.pk, "token": "tok_123"}, content_type="application/json")
    assert r.status_code == 503 and r.json()["code"] == "PaymentsNotConfigured"
    assert not Payment.objects.exists()


def test_another_users_payment_is_not_found(signed_in, started, django_user_model):
    other = django_user_model.objects.create_user("other", "other@example.com", "pw")
    Payment.objects.filter(pk=started.pk).update(user=other)
    assert signed_in.get(f"/app/billing/payments/{started.pk}/").status_code == 404
