"""A call's token usage: the miner's own report when it gave a valid one,
else counted by us (``endpoint.core.tokens``). ``source`` says which; the
/v1 answer names it in its ``bittensor`` field."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from .tokens import count_messages, count_text, encoding

MINER, COUNTED = "miner", "counted"  # Usage.source
# Past this many characters the counting runs in a worker thread (tiktoken
# lets go of the GIL), not on the event loop: about 2 ms of encoding. So does
# the first count of a process, which loads the encoding (about 0.1 s).
INLINE_CHARS = 32 * 1024
# The log's integer columns hold no more; a report past it is no real count.
MAX_TOKENS = 2**31 - 1


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    source: str

    def json(self) -> dict[str, int]:
        """OpenAI's CompletionUsage."""
        total = self.prompt_tokens + self.completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens, "total_tokens": total}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKENS else None


def reported_usage(usage: Any) -> Usage | None:
    """A miner's ``usage``, if it has OpenAI's shape: non-negative integer
    prompt, completion and total tokens (each below MAX_TOKENS), the total their sum."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    total = _count(usage.get("total_tokens"))
    if prompt is None or completion is None or total is None or total != prompt + completion:
        return None
    return Usage(prompt, completion, MINER)


def counted_usage(messages: list[dict[str, Any]], answers: list[str]) -> Usage:
    """The prompt's tokens and those of every answer (one a choice)."""
    return Usage(count_messages(messages), sum(count_text(a) for a in answers), COUNTED)


async def ausage(reported: Any, messages: list[dict[str, Any]], answers: list[str]) -> Usage:
    """The miner's usage when it reported a valid one, else ours."""
    if (usage := reported_usage(reported)) is not None:
        return usage
    size = sum(len(a) for a in answers) + sum(len(str(m.get("content") or "")) for m in messages)
    if size <= INLINE_CHARS and encoding.cache_info().currsize:
        return counted_usage(messages, answers)
    return await asyncio.to_thread(counted_usage, messages, answers)


def combined_usage(parts: list[Usage]) -> Usage:
    """Several miners' answers to one prompt: the prompt once, the completions
    added up; ``miner`` only if every miner reported its own."""
    source = MINER if all(p.source == MINER for p in parts) else COUNTED
    return Usage(parts[0].prompt_tokens, sum(p.completion_tokens for p in parts), source)
