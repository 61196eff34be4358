"""Abuse limits of the chat pages, per signed-in user: prompts sent from the
chat page (CHAT_SEND_RATE, default 60 a minute) and keys created
(KEY_CREATE_RATE, default 10 an hour, the keys page and POST /api/keys/
together), card payments tried from the billing page (CARD_PAYMENT_RATE,
default 10 an hour: card testers try many stolen cards at once).

They sit on top of the gateway's rate limits, which hold what costs credits;
these keep a script or a stuck page from filling the database. Counted by
django-ratelimit in fixed windows in the "ratelimit" cache; every attempt
counts, accepted or not. With Redis down they do not apply
(RATELIMIT_FAIL_OPEN and endpoint.core.cache): the pages keep working.

Sign-up and password reset are allauth's pages; allauth's own limits hold
them (ACCOUNT_RATE_LIMITS in settings)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage

from endpoint.core import errors

SEND = "chat-send"
KEY_CREATION = "key-creation"
CARD_PAYMENT = "card-payment"

_TOO_FAST = {
    SEND: "You are sending messages too fast. Try again in {seconds} seconds.",
    KEY_CREATION: "You are creating keys too fast. Try again in {seconds} seconds.",
    CARD_PAYMENT: "Too many payment attempts. Try again in {seconds} seconds.",
}


def _rate(group: str, request: HttpRequest) -> str:
    # Read on every call, so a changed setting applies without a restart of this module.
    rates = {SEND: settings.CHAT_SEND_RATE, KEY_CREATION: settings.KEY_CREATE_RATE}
    return rates[group] if group in rates else settings.CARD_PAYMENT_RATE


def count_page_use(request: HttpRequest, group: str, user) -> None:
    """Count one use of ``group`` by ``user``; RateLimitExceeded (429 with
    Retry-After) once they are over its limit."""
    usage = get_usage(request, group=group, key=lambda _group, _request: str(user.pk), rate=_rate, increment=True)
    if usage is not None and usage["should_limit"]:
        seconds = max(1, usage["time_left"])
        raise errors.RateLimitExceeded(_TOO_FAST[group].format(seconds=seconds), retry_after=seconds)
