"""Purchases, refunds, TAO deposits and spending at once across two server
processes: Stripe's events arrive duplicated, re-sent under new ids and out
of order, deposit scans run side by side, and the key spends on /v1. Every
payment and deposit is credited exactly once, every refund taken back once,
and the ledger sums to the balance."""

from __future__ import annotations

import random
import secrets
from concurrent.futures import ThreadPoolExecutor

import httpx
from bittensor.sp_core import Keypair
from django.db import connection
from django.db.models import Sum

from billing import deposits
from billing.models import RAO_PER_TAO, Deposit, Payment
from chat.models import ChatAccount
from endpoint.core.config import do_set_config
from keys.credits import audit_credits, open_holds
from keys.models import ApiKey, CreditEntry
from keys.services import do_create_key
from logs.models import Request
from tests.billing.stripe_events import WEBHOOK_SECRET, WEBHOOK_URL, charge_refunded, intent_succeeded, signed
from tests.billing.tao_chain_fixture import FakeChain
from tests.factories import UserFactory
from tests.servers import database_env, start_server, stop

PAYMENTS, CREDITS, AMOUNT = 12, 100, 500
REFUNDED, HALF_REFUNDED = range(0, 4), range(4, 6)  # which payments are refunded whole, or half
CREDITS_PER_TAO, DEPOSITS_TAO = 100, (2, 3, 5)


def _events(payments: list[Payment]) -> list[dict]:
    events = []
    for i, payment in enumerate(payments):
        succeeded = intent_succeeded(payment)
        events += [succeeded, succeeded, intent_succeeded(payment)]  # a duplicate, and a re-send under a new id
        if i in REFUNDED:
            refund = charge_refunded(payment, AMOUNT)
            events += [refund, refund]
        if i in HALF_REFUNDED:
            events += [charge_refunded(payment, AMOUNT // 2), charge_refunded(payment, AMOUNT // 5)]  # one late
    random.Random(7).shuffle(events)  # refunds before their payment, too
    return events


def _deliver(base: str, event: dict) -> int:
    payload, header = signed(event)
    headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
    return httpx.post(base + WEBHOOK_URL, content=payload, headers=headers, timeout=30).status_code


def _spend(base: str, raw: str) -> int:
    body = {"model": "auto", "messages": [{"role": "user", "content": "spend"}]}
    headers = {"Authorization": f"Bearer {raw}"}
    return httpx.post(base + "/v1/chat/completions", json=body, headers=headers, timeout=30).status_code


def _scan(chain: FakeChain) -> None:
    try:
        deposits.scan_deposits(network="local", substrate=chain)
    finally:
        connection.close()  # this pool thread's own


def _chain_with_deposits(buyer) -> FakeChain:
    deposits.do_set_seed(Keypair.generate_mnemonic())
    deposits.do_set_rate(credits_per_tao=CREDITS_PER_TAO, minimum_tao="1", confirmations=2)
    chain = FakeChain(head=500)
    address = deposits.deposit_address(buyer).address
    for block, tao in zip((495, 496, 497), DEPOSITS_TAO, strict=True):
        chain.transfer(block, Keypair.create_from_uri("//Bob").ss58_address, address, tao * RAO_PER_TAO)
    return chain


def test_every_payment_is_credited_once_across_two_servers(network, postgres):
    do_set_config("stripe_webhook_secret", WEBHOOK_SECRET)
    do_set_config("cost_per_answer", "1")
    buyer, new = UserFactory(), do_create_key(name="bought", credits=0)
    ChatAccount.objects.create(user=buyer, key=new.key)  # deposits land on the key that spends
    chain = _chain_with_deposits(buyer)
    payments = [
        Payment.objects.create(
            user=buyer,
            key=new.key,
            credits=CREDITS,
            amount=AMOUNT,
            currency="usd",
            stripe_payment_intent="pi_" + secrets.token_hex(8),
        )  # fmt: skip
        for _ in range(PAYMENTS)
    ]
    events = _events(payments)
    servers = [start_server(database_env()) for _ in range(2)]
    try:
        bases = [base for _, base in servers]
        with ThreadPoolExecutor(8) as pool:
            delivered, spent, scans = [], [], []
            for i, event in enumerate(events):  # a call to /v1 after every other event
                delivered.append(pool.submit(_deliver, bases[i % 2], event))
                if i % 2:
                    spent.append(pool.submit(_spend, bases[(i // 2) % 2], new.raw))
                if i % 10 == 5:  # deposit scans, two at a time
                    scans += [pool.submit(_scan, chain), pool.submit(_scan, chain)]
            assert {f.result() for f in delivered} == {200}
            assert {f.result() for f in spent} <= {200, 402}  # 402 while nothing was credited yet
            assert [f.result() for f in scans] == [None] * len(scans)
    finally:
        for proc, _ in servers:
            stop(proc)

    purchases = CreditEntry.objects.filter(key_id=new.key.pk, kind=CreditEntry.PURCHASE)
    assert purchases.count() == PAYMENTS and {e.amount for e in purchases} == {CREDITS}
    taken = {p.pk: p.credits_taken_back for p in Payment.objects.all()}
    assert [taken[p.pk] for p in payments] == [CREDITS] * 4 + [CREDITS // 2] * 2 + [0] * 6
    charged = Request.objects.filter(key_id=new.key.pk).aggregate(total=Sum("credits_charged"))["total"] or 0
    credited = CreditEntry.objects.filter(key_id=new.key.pk, kind=CreditEntry.DEPOSIT)
    assert sorted(e.amount for e in credited) == [tao * CREDITS_PER_TAO for tao in DEPOSITS_TAO]
    assert Deposit.objects.filter(status=Deposit.CREDITED).count() == len(DEPOSITS_TAO) == Deposit.objects.count()
    deposited = sum(DEPOSITS_TAO) * CREDITS_PER_TAO
    expected = PAYMENTS * CREDITS - len(REFUNDED) * CREDITS - len(HALF_REFUNDED) * CREDITS // 2 + deposited - charged
    assert charged > 0 and ApiKey.objects.get(pk=new.key.pk).credits == expected
    assert audit_credits() == [] and open_holds() == (0, 0)


def test_a_refund_of_spent_credits_leaves_the_key_answering_402_until_topped_up(network, live_server_url):
    do_set_config("stripe_webhook_secret", WEBHOOK_SECRET)
    do_set_config("cost_per_answer", "1")
    new = do_create_key(name="refunded", credits=0)
    first, second = (
        Payment.objects.create(
            user=UserFactory(),
            key=new.key,
            credits=2,
            amount=AMOUNT,
            currency="usd",
            stripe_payment_intent="pi_" + secrets.token_hex(8),
        )  # fmt: skip
        for _ in range(2)
    )
    assert _deliver(live_server_url, intent_succeeded(first)) == 200
    assert _spend(live_server_url, new.raw) == 200  # one of the two credits spent
    assert _deliver(live_server_url, charge_refunded(first, AMOUNT)) == 200
    assert ApiKey.objects.get(pk=new.key.pk).credits == -1
    refused = httpx.post(
        live_server_url + "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "more"}]},
        headers={"Authorization": f"Bearer {new.raw}"},
        timeout=30,
    )
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "APIKeyNotEnoughCredits"
    _deliver(live_server_url, intent_succeeded(second))  # topped up: 1 credit left
    assert _spend(live_server_url, new.raw) == 200
    assert ApiKey.objects.get(pk=new.key.pk).credits == 0 and audit_credits() == []
