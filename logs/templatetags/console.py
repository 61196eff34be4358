"""The dashboard on the admin index: ``{% console_dashboard %}``."""

from __future__ import annotations

from django import template

from logs.charts import bar_chart
from logs.stats import DEFAULT_WINDOW, WINDOWS, dashboard_stats

register = template.Library()

DASHBOARD_PERMISSION = "logs.view_request"  # who may read the logs may read their figures


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


@register.filter
def thousands(value: int | None) -> str:
    """12345 as 12,345: counts on the dashboard read at a glance."""
    return "–" if value is None else f"{value:,}"


@register.inclusion_tag("admin/console/dashboard.html", takes_context=True)
def console_dashboard(context: template.Context) -> dict:
    request = context["request"]
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        return {"allowed": False}
    window = request.GET.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        window = DEFAULT_WINDOW
    stats = dashboard_stats(window)
    return {
        "allowed": True,
        "windows": list(WINDOWS),
        "stats": stats,
        "cards": [
            ("Requests", f"{stats['requests']:,}"),
            ("Success rate", _percent(stats["success_rate"])),
            ("Credits spent", f"{stats['credits_spent']:,}"),
            ("Tokens in", f"{stats['prompt_tokens']:,}"),
            ("Tokens out", f"{stats['completion_tokens']:,}"),
            ("p50 latency", _ms(stats["p50_ms"])),
            ("p95 latency", _ms(stats["p95_ms"])),
        ],
        "charts": [
            ("Requests", bar_chart(stats["series"], "requests", stats["bucket"])),
            ("Errors", bar_chart(stats["series"], "errors", stats["bucket"])),
        ],
        "top_miners": [
            {**miner, "success": _percent(miner["success_rate"]), "p50": _ms(miner["p50_ms"])}
            for miner in stats["top_miners"]
        ],
        "can_see_keys": request.user.has_perm("keys.view_apikey"),
    }
