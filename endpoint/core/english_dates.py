"""Moments written in English ("in 1 month", "yesterday", "1 hour ago"),
read the same way wherever an operator types one (key expiries, log ranges)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal


def parse_english_moment(text: str, *, base: datetime, prefer: Literal["future", "past"]) -> datetime | None:
    """``text`` as an aware UTC datetime counted from ``base``, or None if it
    isn't one. ``prefer`` settles ambiguous words ("Friday")."""
    # Imported here: dateparser's language data is megabytes that a web
    # worker serving the API never needs (only the admin and the CLI read these).
    from dateparser.date import DateDataParser

    parser = DateDataParser(
        languages=["en"],
        settings={
            "RELATIVE_BASE": base.astimezone(UTC).replace(tzinfo=None),
            "PREFER_DATES_FROM": prefer,
            "TIMEZONE": "UTC",
            "TO_TIMEZONE": "UTC",
            "RETURN_AS_TIMEZONE_AWARE": True,
        },
    )
    return parser.get_date_data(text).date_obj
