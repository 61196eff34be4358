"""Operators' edits of rate-limit rules (CLI, admin, management API): a
key's own rules, or the global ones every key without its own follows, and
the switch that turns them on. The counting itself is the gateway's
(``endpoint.ratelimits``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from endpoint.core.errors import RateLimitInputError
from endpoint.core.models import EndpointConfig

from .models import ApiKey
from .services import do_edit_key


@dataclass(frozen=True)
class RuleListing:
    rules: list[dict[str, int]]
    own: bool  # the key's own rules; False means the global ones


def _whole_number(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RateLimitInputError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def list_rate_limits(key=None) -> RuleListing:
    """The rules in force for ``key`` (its own, else the global ones), or the
    global rules when no key is given."""
    if key is not None and key.rate_limits:
        return RuleListing(list(key.rate_limits), own=True)
    return RuleListing(list(EndpointConfig.load().global_rate_limits), own=False)


def do_add_rate_limit(times: int, seconds: int, key=None) -> list[dict[str, int]]:
    """Append a rule to the global rules, or to ``key``'s own; returns the new list."""
    rule = {"times": _whole_number("times", times), "seconds": _whole_number("seconds", seconds)}
    return _change_rules(key, lambda rules: [*rules, rule])


def do_delete_rate_limit(index: int, key=None) -> list[dict[str, int]]:
    """Remove the rule at ``index`` (from 0); returns the new list."""

    def without(rules: list[dict[str, int]]) -> list[dict[str, int]]:
        if not rules:
            whose = "the key has no rate limits of its own" if key is not None else "there are no global rate limits"
            raise RateLimitInputError(f"no rate limit at index {index}: {whose}")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(rules):
            raise RateLimitInputError(f"no rate limit at index {index!r}; indexes run from 0 to {len(rules) - 1}")
        return rules[:index] + rules[index + 1 :]

    return _change_rules(key, without)


def _change_rules(key, change) -> list[dict[str, int]]:
    # Row locks: two operators adding at once must both see their rule kept.
    with transaction.atomic():
        if key is None:
            EndpointConfig.load()  # the row exists before it is locked
            row = EndpointConfig.objects.select_for_update().get(pk=1)
            row.global_rate_limits = change(list(row.global_rate_limits))
            row.save()  # post_save drops this process's config snapshot
            return row.global_rate_limits
        locked = ApiKey.objects.select_for_update().get(pk=key.pk)
        rules = change(list(locked.rate_limits))
        do_edit_key(locked, rate_limits=rules)
    key.rate_limits = rules
    return rules


def do_set_rate_limiting(enabled: bool) -> None:
    row = EndpointConfig.load()
    row.rate_limiting_enabled = bool(enabled)
    row.save()
