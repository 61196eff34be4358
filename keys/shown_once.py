"""A new key's full text between the POST that made it and the one page that
shows it (post/redirect/get): kept in the creator's session, taken out by the
first GET, so a refresh can neither show it again nor create another key."""

from __future__ import annotations

from django.http import HttpRequest

from .models import ApiKey

SESSION_KEY = "keys_to_show_once"


def keep_to_show_once(request: HttpRequest, key: ApiKey, raw: str) -> None:
    pending = request.session.get(SESSION_KEY, {})
    pending[str(key.pk)] = raw
    request.session[SESSION_KEY] = pending


def take_to_show(request: HttpRequest, key: ApiKey) -> str | None:
    """The full key if this session has not been shown it yet, else None."""
    pending = request.session.get(SESSION_KEY, {})
    raw = pending.pop(str(key.pk), None)
    if raw is not None:
        request.session[SESSION_KEY] = pending  # saved without it: shown once
    return raw
