"""Request ids: ours, and the client's own.

Every gateway answer names its request in ``x-request-id``: ``req_`` + the
request log's UUID (hex), so whoever quotes it leads an operator to one log
row. A client may send an id of its own (``X-Client-Request-Id``, as OpenAI
names it, or ``X-Request-Id``); a sane one is stored on the request log and
echoed in ``x-client-request-id``. It never replaces ours: OpenAI's SDKs
show ``x-request-id`` as the server's id, and a client's id need not be
unique.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

PREFIX = "req_"
# The headers a client's own id may come in, the more specific first.
CLIENT_HEADERS = ("x-client-request-id", "x-request-id")
# Short printable ASCII without spaces: anything else could smuggle odd bytes
# into our answer, the logs or the admin, so it is ignored.
CLIENT_ID = re.compile(r"[!-~]{1,128}")


def answer_id(log_id: uuid.UUID) -> str:
    """The ``x-request-id`` of the call logged under ``log_id``."""
    return PREFIX + log_id.hex


def log_id(text: str) -> uuid.UUID | None:
    """The request log's id an ``x-request-id`` (or a bare UUID) names, else None."""
    try:
        return uuid.UUID(text.strip().removeprefix(PREFIX))
    except ValueError:
        return None


def client_request_id(headers: Mapping[str, str]) -> str:
    """The client's own request id, or "" when it sent none that is sane.
    ``headers`` are looked up by lower-case name (Django's are case-blind)."""
    for name in CLIENT_HEADERS:
        value = headers.get(name)
        if value and CLIENT_ID.fullmatch(value):
            return value
    return ""
