"""One rule for text a person types and we store (chat messages,
conversation names, key names): text holding a NUL character (U+0000) is
refused with a message naming the field, never stripped, as is text over the
field's length limit. PostgreSQL cannot store NUL in text, and quietly
dropping characters would keep something other than what the person typed."""

from __future__ import annotations

from .errors import InputError


def checked_text(text: object, what: str, limit: int, error: type[InputError] = InputError) -> str:
    """``text`` as typed, if it may be stored; else ``error`` saying why."""
    if not isinstance(text, str):
        raise error(f"{what} must be text.")
    if "\x00" in text:
        raise error(f"{what} cannot contain NUL characters (\\x00).")
    if len(text) > limit:
        raise error(f"{what} is limited to {limit} characters.")
    return text
