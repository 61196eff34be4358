"""Revenue next to spend on the admin index: ``{% revenue_by_day %}``."""

from __future__ import annotations

from django import template

from billing.revenue import DAYS, revenue_by_day, revenue_text

register = template.Library()

REVENUE_PERMISSION = "billing.view_payment"  # who may read payments may read what they add up to


@register.inclusion_tag("admin/console/revenue.html", takes_context=True)
def revenue_table(context: template.Context) -> dict:
    if not context["request"].user.has_perm(REVENUE_PERMISSION):
        return {"allowed": False}
    rows = revenue_by_day()
    totals: dict[str, int] = {}
    for row in rows:
        for currency, amount in row["revenue"].items():
            totals[currency] = totals.get(currency, 0) + amount
    return {
        "allowed": True,
        "days": DAYS,
        "rows": [_texts(row["day"], row["revenue"], row["credits_sold"], row["credits_spent"]) for row in rows],
        "total": _texts(
            "Total",
            dict(sorted(totals.items())),
            sum(row["credits_sold"] for row in rows),
            sum(row["credits_spent"] for row in rows),
        ),
    }


def _texts(day, revenue: dict[str, int], sold: int, spent: int) -> dict:
    return {"day": day, "revenue": revenue_text(revenue), "sold": f"{sold:,}", "spent": f"{spent:,}"}
