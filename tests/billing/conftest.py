from __future__ import annotations

import secrets

import pytest

from billing.models import CreditPack, Payment
from chat.services import chat_account
from endpoint.core.config import do_set_config
from keys.models import ApiKey
from tests.billing.stripe_events import WEBHOOK_SECRET
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fresh_page_limits():
    """Payment attempts are counted per user id, and ids restart with each test database."""
    from django.core.cache import caches

    from tests.conftest import delete_redis_keys

    if not delete_redis_keys("ratelimit:pages:*"):
        caches["ratelimit"].clear()


@pytest.fixture
def stripe_configured(db):
    do_set_config("stripe_webhook_secret", WEBHOOK_SECRET)


@pytest.fixture
def pack(db) -> CreditPack:
    return CreditPack.objects.create(name="Starter", credits=1000, amount=500, currency="usd")


@pytest.fixture
def buyer(db):
    user = UserFactory(email="buyer@example.com")
    chat_account(user)  # the balance key, with the sign-up grant
    return user


def balance(user) -> int:
    return ApiKey.objects.get(pk=chat_account(user).key_id).credits


@pytest.fixture
def started(buyer, pack) -> Payment:
    """A payment as do_start_payment leaves it once Stripe took the card."""
    return Payment.objects.create(
        user=buyer, key=chat_account(buyer).key, pack=pack, credits=pack.credits, amount=pack.amount,
        currency=pack.currency, stripe_payment_intent="pi_" + secrets.token_hex(10),
    )  # fmt: skip
