"""Every call to OpenAI: the moderation filter in front of the miners.

All message contents go to the moderations endpoint in one call, with a short
timeout. Flagged → 400, nothing dispatched, nothing charged. If OpenAI can't
be asked (timeout, bad key, outage) the request goes through with a warning,
as the original did, unless the operator chose to fail closed.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

from django.conf import settings

from endpoint import errors
from endpoint.config import RuntimeConfig

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], openai.AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


def _client(api_key: str, base_url: str) -> openai.AsyncOpenAI:
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get((api_key, base_url))
    if client is None:
        import openai  # here, not at the top: half a second and tens of MB per worker, for an optional filter

        client = openai.AsyncOpenAI(
            api_key=api_key or "not-configured",
            base_url=base_url,
            timeout=settings.MODERATION_TIMEOUT_SECONDS,
            max_retries=0,
        )
        per_loop[(api_key, base_url)] = client
    return client


def _api_error() -> type[Exception]:
    import openai

    return openai.APIError


def _texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if isinstance(m.get("content"), str) and m["content"].strip()]


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
