"""Reading an operator's "valid until" for a key: a date, a timestamp, a
word meaning "never", or English like "in 1 month"."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from endpoint.core.english_dates import parse_english_moment
from endpoint.core.errors import KeyInputError

NEVER = ("-1", "never", "false", "none", "")
HINT = "use a date (2025-01-01), a unix timestamp, 'never' (or -1), or English like 'in 1 month'"


def parse_valid_until(text: str) -> datetime | None:
    """The moment a key should expire (aware, UTC), or None for never.

    Relative phrases count from the start of today (UTC), not from this
    second, as the original btvep did: "in 1 month" gives a clean day
    boundary rather than a time nobody asked for.
    Raises KeyInputError for text it cannot read or a moment already past.
    """
    text = (text or "").strip()
    if text.lower() in NEVER:
        return None
    now = timezone.now()
    moment = _from_timestamp(text) or _from_iso(text)
    relative = moment is None
    if relative:
        moment = _from_english(text, base=now)
    if moment is None:
        raise KeyInputError(f"cannot read the expiry {text!r}: {HINT}")
    if moment <= now:
        when = moment.strftime("%Y-%m-%d %H:%M UTC")
        why = " (relative dates count from the start of today, UTC)" if relative else ""
        raise KeyInputError(f"the expiry {text!r} is in the past ({when}){why}; give a future date or 'never'")
    return moment


def _from_timestamp(text: str) -> datetime | None:
    try:
        seconds = float(text)
    except ValueError:
        return None
    if seconds < 0:
        raise KeyInputError(f"the expiry {text!r} is a negative timestamp; use -1 or 'never' for no expiry")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise KeyInputError(f"the timestamp {text!r} is out of range") from None


def _from_iso(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _from_english(text: str, *, base: datetime) -> datetime | None:
    start_of_today = base.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return parse_english_moment(text, base=start_of_today, prefer="future")
