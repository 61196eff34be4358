"""Counting tokens offline, with OpenAI's cl100k_base encoding (tiktoken).

The encoding's rank file is vendored (``vendor/tiktoken/``) and loaded from
disk: nothing is downloaded, at run time or ever. A chat prompt is counted
as OpenAI documents for its cl100k models: 3 tokens a message, 1 more for a
name, 3 for the reply's start, plus the tokens of every text in it."""

from __future__ import annotations

import base64
import functools
import hashlib
from pathlib import Path
from typing import Any

import orjson
import tiktoken

ENCODING = "cl100k_base"
RANKS_FILE = Path(__file__).resolve().parent / "vendor" / "tiktoken" / "cl100k_base.tiktoken"
RANKS_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# As tiktoken_ext.openai_public defines cl100k_base.
PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
PER_MESSAGE, PER_NAME, REPLY_PRIMING = 3, 1, 3


@functools.cache
def encoding() -> tiktoken.Encoding:
    """The encoding, loaded once per process (about 0.1 s)."""
    return tiktoken.Encoding(name=ENCODING, pat_str=PATTERN, mergeable_ranks=_ranks(), special_tokens=SPECIAL_TOKENS)


def _ranks() -> dict[bytes, int]:
    """The vendored rank file, read as tiktoken's ``load_tiktoken_bpe`` reads
    it, but directly: that one copies every file it loads into a cache
    folder, and fetches any it is given a URL for."""
    contents = RANKS_FILE.read_bytes()
    if hashlib.sha256(contents).hexdigest() != RANKS_SHA256:
        raise RuntimeError(f"{RANKS_FILE} is not the cl100k_base rank file (its sha256 differs)")
    return {
        base64.b64decode(token): int(rank) for token, rank in (line.split() for line in contents.splitlines() if line)
    }


def count_text(text: str) -> int:
    """Tokens in a text; special tokens' spellings count as plain text, as a client can't send them."""
    return len(encoding().encode_ordinary(text)) if text else 0


def _texts(value: Any) -> list[str]:
    """The strings a message's field holds: text, text parts, or anything else as JSON."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        texts = [p["text"] for p in value if isinstance(p.get("text"), str)]
        if len(texts) == len(value):
            return texts
    return [] if value is None else [orjson.dumps(value).decode()]


def count_messages(messages: list[dict[str, Any]]) -> int:
    """Tokens of a chat prompt, the way OpenAI bills its cl100k chat models."""
    total = REPLY_PRIMING
    for message in messages:
        total += PER_MESSAGE
        for name, value in message.items():
            total += sum(count_text(t) for t in _texts(value)) + (PER_NAME if name == "name" else 0)
    return total
