"""Reading request logs: the filters `manage.py logs` (and anything else that
lists requests) applies, in a fixed number of queries whatever the rows."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from endpoint.core.request_ids import log_id
from keys.models import ApiKey

from .models import MinerResponse, Request

DEFAULT_LINES = 100


def filter_requests(
    *,
    key: ApiKey | int | None = None,
    hotkey: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    request_id: str | None = None,
    lines: int | None = DEFAULT_LINES,
) -> QuerySet[Request]:
    """The newest requests matching every given filter.

    ``hotkey`` keeps requests a miner with that hotkey answered successfully;
    ``start`` is inclusive, ``end`` exclusive; ``request_id`` is an answer's
    ``x-request-id`` or the client's own id. Each request comes with its key
    and with ``responders``: its successful MinerResponses, by uid.
    """
    requests = Request.objects.order_by("-started_at")
    if key is not None:
        requests = requests.filter(key=key)
    if hotkey:
        # EXISTS rather than a join, so a request several of the miner's
        # answers matched still appears once.
        answered = MinerResponse.objects.filter(request=OuterRef("pk"), hotkey=hotkey, is_success=True)
        requests = requests.filter(Exists(answered))
    if request_id:
        requests = requests.filter(with_request_id(request_id))
    if start is not None:
        requests = requests.filter(started_at__gte=start)
    if end is not None:
        requests = requests.filter(started_at__lt=end)
    successes = MinerResponse.objects.filter(is_success=True).order_by("uid")
    requests = requests.select_related("key").prefetch_related(
        Prefetch("miner_responses", queryset=successes, to_attr="responders")
    )
    return requests[:lines] if lines is not None else requests


def first_prompt(messages: object) -> str:
    """The first user message's text ('' if there is none)."""
    if not isinstance(messages, list):
        return ""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _text_of(content: object) -> str:
    # OpenAI lets content be a list of parts; only the text parts are prompt.
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def with_request_id(term: str) -> Q:
    """The call an answer's ``x-request-id`` (``req_`` + log id, or the bare
    UUID) names, or the calls a client sent with that id of its own."""
    term = term.strip()
    theirs = Q(client_request_id=term)
    return theirs | Q(id=ours) if (ours := log_id(term)) is not None else theirs
