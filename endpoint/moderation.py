"""Every call to OpenAI: the moderation filter in front of the miners.

Every text in the messages (contents, text parts, names, tool call
arguments) goes to the moderations endpoint in one call, with a short
timeout. Flagged → 400, nothing dispatched, nothing charged. If OpenAI can't
be asked (timeout, bad key, outage) the request goes through with a warning,
as the original did, unless the operator chose to fail closed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings

from endpoint.core import errors
from endpoint.core.config import RuntimeConfig
from endpoint.core.loopbound import PerLoop

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

_clients: PerLoop[tuple[str, str], openai.AsyncOpenAI] = PerLoop()


def _client(api_key: str, base_url: str) -> openai.AsyncOpenAI:
    return _clients.get((api_key, base_url), _new_client)


def _new_client(key: tuple[str, str]) -> openai.AsyncOpenAI:
    import openai  # here, not at the top: half a second and tens of MB per worker, for an optional filter

    api_key, base_url = key
    return openai.AsyncOpenAI(
        api_key=api_key or "not-configured",
        base_url=base_url,
        timeout=settings.MODERATION_TIMEOUT_SECONDS,
        max_retries=0,
    )


def _api_error() -> type[Exception]:
    import openai

    return openai.APIError


# Keys under which a message holds no text for the model to read: its role,
# identifiers, and media (sent as URLs or base64, not moderated as text).
NOT_TEXT_KEYS = frozenset({"role", "type", "id", "tool_call_id", "image_url", "input_audio", "audio", "file"})


def _texts(messages: list[dict[str, Any]]) -> list[str]:
    """Every text a miner receives in ``messages``, in order.

    Messages go to miners as the client sent them (the OpenAI route keeps
    unknown fields), and a miner's chat template may render any of them:
    string content, text parts of a content list, a ``name``, tool call
    arguments, fields we have never heard of. So all strings are collected,
    except under the keys that hold no text.
    """
    texts: list[str] = []
    pending: list[Any] = list(reversed(messages))
    while pending:  # a loop, not recursion: nesting depth is the client's choice
        value = pending.pop()
        if isinstance(value, str):
            if value.strip():
                texts.append(value)
        elif isinstance(value, dict):
            pending.extend(item for key, item in reversed(value.items()) if key not in NOT_TEXT_KEYS)
        elif isinstance(value, list):
            pending.extend(reversed(value))
    return texts


async def check_moderation(messages: list[dict[str, Any]], config: RuntimeConfig) -> None:
    """Raise FlaggedByModeration if OpenAI flags any message."""
    if not config.moderation_enabled:
        return
    texts = _texts(messages)
    if not texts:
        return
    client = _client(config.openai_api_key, config.openai_base_url)
    try:
        result = await client.moderations.create(input=texts)
    except (_api_error(), TimeoutError) as exc:
        if config.moderation_fail_closed:
            log.error("moderation check failed (%s); refusing the request (fail closed)", type(exc).__name__)
            raise errors.ModerationUnavailable() from None
        log.warning("moderation check failed (%s); letting the request through", type(exc).__name__)
        return
    if any(r.flagged for r in result.results):
        raise errors.FlaggedByModeration()
