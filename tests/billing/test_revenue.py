"""Revenue per day next to spend, on the admin index."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import RAO_PER_TAO, Deposit, DepositAddress, Payment
from billing.revenue import revenue_by_day
from tests.factories import RequestLogFactory, UserFactory
from tests.viewers import viewer_group

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def paid(started: Payment, at: datetime | None, amount: int, currency: str = "usd", **fields) -> Payment:
    """Another payment like ``started``, credited at ``at`` (None: never credited)."""
    fields.setdefault("status", Payment.SUCCEEDED if at else Payment.FAILED)
    return Payment.objects.create(
        user=started.user,
        key=started.key,
        credits=amount * 2,
        amount=amount,
        currency=currency,
        credited_at=at,
        **fields,
    )


@pytest.fixture
def sales(started, postgres):
    today, yesterday = NOW - timedelta(hours=1), NOW - timedelta(days=1)
    paid(started, today, 500)
    paid(started, today, 1000, amount_refunded=400, status=Payment.PARTLY_REFUNDED)
    paid(started, today, 300, currency="eur")
    paid(started, yesterday, 2000, disputed=True, status=Payment.DISPUTED)  # the bank holds it
    paid(started, yesterday, 700)
    paid(started, None, 9999)  # declined: no money, no credits
    paid(started, NOW - timedelta(days=30), 5000)  # before the table's first day
    address = DepositAddress.objects.create(user=started.user, index=1, address="5DepositAddressOfTheBuyer")
    for n, (status, rao) in enumerate(((Deposit.CREDITED, 3 * RAO_PER_TAO // 2), (Deposit.PENDING, RAO_PER_TAO))):
        Deposit.objects.create(
            address=address, user=started.user, key=started.key, block_number=100, block_hash="0x" + "ab" * 32,
            extrinsic_index=n, event_index=n, sender="5Sender", amount_rao=rao, credits=150, status=status,
            credited_at=yesterday if status == Deposit.CREDITED else None,
        )  # fmt: skip
    for hours, credits in ((2, 3), (3, 4), (26, 5)):
        RequestLogFactory(started_at=NOW - timedelta(hours=hours), credits_charged=credits)
    return started


def test_each_day_adds_payments_net_of_refunds_and_disputes_next_to_credits_spent(sales):
    rows = revenue_by_day(14, now=NOW)
    assert len(rows) == 14 and rows[0]["day"] == NOW.date() and rows[-1]["day"] == NOW.date() - timedelta(days=13)
    today, yesterday = rows[0], rows[1]
    assert today["revenue"] == {"eur": 300, "usd": 500 + 600}
    assert today["credits_sold"] == 2 * (500 + 1000 + 300) and today["credits_spent"] == 7
    # The disputed 20.00 counts nothing; the credited 1.5 TAO does, the pending 1 TAO not yet.
    assert yesterday["revenue"] == {"tao": 1_500_000_000, "usd": 700}
    assert yesterday["credits_sold"] == 2 * (2000 + 700) + 150 and yesterday["credits_spent"] == 5
    assert all(row["revenue"] == {} and row["credits_spent"] == 0 for row in rows[2:])


def test_the_index_shows_the_table_to_whoever_reads_payments_only(started, postgres, console):
    started.credited_at = timezone.now()
    started.status = Payment.SUCCEEDED
    started.save()  # the starter pack's 5.00 USD, paid today
    paid(started, timezone.now() - timedelta(days=20), 700)  # before the table's first day
    page = console.get("/admin/").text
    table = re.search(r'<div class="traffic module" id="revenue">.*?</table>', page, re.S).group(0)
    assert "Revenue and spend, last 14 days (UTC)" in table
    today = re.search(rf"<tr><td>{timezone.now():%Y-%m-%d}</td><td>(.*?)</td><td>(.*?)</td>", table)
    assert today.groups() == ("5.00 USD", "1,000")
    assert "<tfoot><tr><th>Total</th><td>5.00 USD</td><td>1,000</td><td>0</td></tr></tfoot>" in table

    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.groups.add(viewer_group())
    client = Client()
    client.force_login(viewer)
    page = client.get("/admin/").text
    assert "Traffic, last 24h" in page and 'id="revenue"' not in page
