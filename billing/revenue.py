"""Money in next to credits out, per day, for the operator's dashboard.

A day's revenue is what the card payments credited that day brought, net of
their refunds (a disputed payment counts nothing: the bank holds or took the
money), and the TAO deposits credited that day, in TAO. Spend is the credits that calls were charged that day. Three
aggregate queries, whatever the size of the tables; days in UTC.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import F, Q, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from logs.models import Request

from .models import Deposit, Payment, money, tao

TAO = "tao"  # the revenue key of TAO deposits, amounts in rao

DAYS = 14


def revenue_by_day(days: int = DAYS, *, now: datetime | None = None) -> list[dict]:
    """One row per day, newest first, empty days included: ``day``,
    ``revenue`` (currency -> net amount in its smallest unit), ``credits_sold``
    and ``credits_spent``."""
    today = (now or timezone.now()).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, tzinfo=UTC)

    sold = (
        Payment.objects.filter(credited_at__gte=since)
        .annotate(day=Trunc("credited_at", "day", tzinfo=UTC))
        .values("day", "currency")
        .annotate(
            net=Sum(F("amount") - F("amount_refunded"), filter=Q(disputed=False)),
            credits=Sum("credits"),
        )
        .order_by()
    )
    revenue: dict[date, dict[str, int]] = defaultdict(dict)
    credits_sold: dict[date, int] = defaultdict(int)
    for row in sold:
        day = row["day"].astimezone(UTC).date()
        revenue[day][row["currency"]] = row["net"] or 0
        credits_sold[day] += row["credits"] or 0

    deposits = (
        Deposit.objects.filter(status=Deposit.CREDITED, credited_at__gte=since)
        .annotate(day=Trunc("credited_at", "day", tzinfo=UTC))
        .values("day")
        .annotate(rao=Sum("amount_rao"), credits=Sum("credits"))
        .order_by()
    )
    for row in deposits:
        day = row["day"].astimezone(UTC).date()
        revenue[day][TAO] = row["rao"] or 0
        credits_sold[day] += row["credits"] or 0

    spent = (
        Request.objects.filter(started_at__gte=since)
        .annotate(day=Trunc("started_at", "day", tzinfo=UTC))
        .values("day")
        .annotate(credits=Sum("credits_charged"))
        .order_by()
    )
    credits_spent = {row["day"].astimezone(UTC).date(): row["credits"] or 0 for row in spent}

    return [
        {
            "day": day,
            "revenue": dict(sorted(revenue.get(day, {}).items())),
            "credits_sold": credits_sold.get(day, 0),
            "credits_spent": credits_spent.get(day, 0),
        }
        for day in (today - timedelta(days=n) for n in range(days))
    ]


def revenue_text(revenue: dict[str, int]) -> str:
    """``{"eur": 300, "tao": 1500000000, "usd": 1500}`` as "3.00 EUR, 1.5 TAO, 15.00 USD"; "–" for none."""
    texts = (tao(amount) if currency == TAO else money(amount, currency) for currency, amount in revenue.items())
    return ", ".join(texts) or "–"
