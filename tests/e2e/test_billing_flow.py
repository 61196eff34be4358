"""In Chromium, against localstripe (a fake Stripe on loopback, its Stripe.js
stand-in in the page, its webhooks signed with the endpoint's secret): a new
user signs up, buys a pack with a test card, sees the credits arrive when the
webhook confirms it, moves them to a key and spends them on /v1. A declined
card charges nothing and credits nothing; a card asking for 3-D Secure is
confirmed in the page."""

from __future__ import annotations

import re

import httpx
import pytest
from django.core import mail
from playwright.sync_api import expect

from billing.models import CreditPack, Payment
from endpoint.core.config import do_set_config
from keys.credits import audit_credits
from keys.models import ApiKey, CreditEntry
from tests.billing.stripe_events import WEBHOOK_SECRET, WEBHOOK_URL
from tests.chat.browser_session import PASSWORD, assert_fits_width, fast_passwords, screenshot  # noqa: F401 - fast_passwords is a fixture
from tests.conftest import delete_redis_keys
from tests.servers import start_localstripe, stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]
GRANT = 10


@pytest.fixture(scope="module")
def localstripe():
    proc, base = start_localstripe()
    yield base
    stop(proc)


@pytest.fixture
def stripe(localstripe, live_server_url, settings):
    """The endpoint set up for card payments, and localstripe posting its events to our webhook."""
    settings.STRIPE_API_BASE = localstripe
    settings.STRIPE_JS_URL = localstripe + "/js.stripe.com/v3/"
    settings.CHAT_SIGNUP_CREDITS = GRANT
    # Every run signs up from 127.0.0.1, and allauth's limits live in Redis across runs.
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "signup": None, "confirm_email": None}
    delete_redis_keys("ratelimit:pages:*")  # payment attempts count per user id, which restart with the database
    do_set_config("stripe_publishable_key", "pk_test_browserflow")
    do_set_config("stripe_secret_key", "sk_test_browserflow")
    do_set_config("stripe_webhook_secret", WEBHOOK_SECRET)
    hook = {"url": live_server_url + WEBHOOK_URL, "secret": WEBHOOK_SECRET, "events[]": ["payment_intent.succeeded"]}
    httpx.post(localstripe + "/_config/webhooks/endpoint", data=hook).raise_for_status()
    CreditPack.objects.create(name="Trial", credits=50, amount=100, currency="usd")
    return CreditPack.objects.create(name="Builder", credits=1000, amount=500, currency="usd")


def _sign_up(page, base_url: str, email: str) -> None:
    page.goto(base_url + "/accounts/signup/")
    page.get_by_label("Email:").fill(email)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again):").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+", mail.outbox[-1].body).group(0)
    page.goto(link)  # confirming signs the user in


def _pay(page, pack: str, number: str) -> None:
    page.get_by_role("link", name="Buy credits").click()
    page.get_by_label(re.compile(pack)).check()
    card = page.locator("#card-element")
    for field, value in (("number", number), ("exp_month", "12"), ("exp_year", "34"), ("cvc", "123")):
        card.get_by_placeholder(field).fill(value)
    card.get_by_placeholder("postal_code").fill("75001")
    page.get_by_role("button", name="Pay").click()


def test_sign_up_buy_a_pack_and_spend_it_on_v1(page, live_server_url, network, stripe):
    _sign_up(page, live_server_url, "buyer@example.com")
    _pay(page, "Builder: 1000 credits for 5.00 USD", "4242424242424242")
    status = page.get_by_role("status").filter(has_text="Payment")
    expect(status).to_have_text("Payment received: your credits were added.", timeout=15_000)
    expect(page.locator("#balance")).to_have_text(str(GRANT + 1000))
    page.reload()
    expect(page.locator("table.payments tbody tr")).to_contain_text(["Succeeded"])
    expect(page.locator("table.movements")).to_contain_text("+1000")
    screenshot(page, "billing-paid")
    for width in (390, 1280, 1440):  # the page with a payment and its movements, on a phone and a laptop
        page.set_viewport_size({"width": width, "height": 900})
        assert_fits_width(page)
        expect(page.locator("table.payments")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My API keys").click()
    page.get_by_label("Name").fill("bought")
    page.get_by_label("Credits moved from your chat balance").fill("1005")  # more than the sign-up grant
    page.get_by_role("button", name="Create key").click()
    raw = page.get_by_label("Full key").input_value()
    answer = httpx.post(
        live_server_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {raw}"},
        json={"model": "uid:3", "messages": [{"role": "user", "content": "paid for"}]},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "Miner 3 heard: paid for"
    assert ApiKey.objects.get(prefix=raw[:8]).credits == 1004
    payment = Payment.objects.get()
    assert payment.status == Payment.SUCCEEDED and payment.stripe_payment_intent.startswith("pi_")
    assert CreditEntry.objects.filter(kind=CreditEntry.PURCHASE).count() == 1
    assert audit_credits() == []


def test_a_declined_card_charges_and_credits_nothing(page, live_server_url, network, stripe):
    _sign_up(page, live_server_url, "declined@example.com")
    _pay(page, "Trial", "4000000000000341")  # Stripe's test card whose charges are declined
    expect(page.get_by_role("status").filter(has_text="declined")).to_be_visible()
    expect(page.locator("#balance")).to_have_text(str(GRANT))
    page.reload()
    expect(page.locator("table.payments tbody tr")).to_contain_text(["Failed"])
    assert not CreditEntry.objects.filter(kind=CreditEntry.PURCHASE).exists()


def test_a_card_asking_for_3d_secure_is_confirmed_in_the_page(page, live_server_url, network, stripe, localstripe):
    _sign_up(page, live_server_url, "secure@example.com")
    _pay(page, "Trial", "4000002500003155")  # Stripe's test card that needs authentication
    page.get_by_role("button", name="Complete authentication").click()  # Stripe.js's bank dialog
    expect(page.get_by_role("status").filter(has_text="Payment")).to_have_text(
        "Payment received: your credits were added.", timeout=15_000
    )
    expect(page.locator("#balance")).to_have_text(str(GRANT + 50))
    assert Payment.objects.get().status == Payment.SUCCEEDED and audit_credits() == []

    # Another card later: charged on the same Stripe customer, so the operator sees one per user there.
    _pay(page, "Trial", "4242424242424242")
    expect(page.get_by_role("status").filter(has_text="Payment")).to_have_text(
        "Payment received: your credits were added.", timeout=15_000
    )
    expect(page.locator("#balance")).to_have_text(str(GRANT + 100))
    first, second = Payment.objects.order_by("pk")
    assert first.stripe_customer.startswith("cus_") and second.stripe_customer == first.stripe_customer
    listed = httpx.get(localstripe + "/v1/customers", headers={"Authorization": "Bearer sk_test_browserflow"})
    assert [c["id"] for c in listed.json()["data"] if c["email"] == "secure@example.com"] == [first.stripe_customer]
