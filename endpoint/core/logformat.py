"""Log output: a JSON formatter (LOG_FORMAT=json) and a filter that masks
credentials before any handler sees a record.

Masked: API keys (``vep_…``, the shown prefix is kept), bearer tokens, OpenAI
keys (``sk-…``) and anything shaped like a BIP-39 mnemonic (12 or more short
lowercase words in a row), so a mistaken ``log.info("%s", config)`` cannot
leak the validator's hotkey.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_SECRETS = (
    (re.compile(r"(vep_[A-Za-z0-9]{4})[A-Za-z0-9_\-]{4,}"), r"\1…"),
    (re.compile(r"(Bearer\s+)[^\s\"',]+", re.IGNORECASE), r"\1***"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), "sk-***"),
    (re.compile(r"\b(sk|rk|whsec)_(live_|test_)?[A-Za-z0-9]{8,}"), r"\1_***"),
    (re.compile(r"\b[a-z]{3,8}(?:\s+[a-z]{3,8}){11,}\b"), "***mnemonic***"),
)


def mask_secrets(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class MaskSecrets(logging.Filter):
    """Rewrites the record's message (and traceback) with credentials masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
        return True


class NoClientErrorTracebacks(logging.Filter):
    """Drops the traceback Django attaches to a 4xx it logs (a 403 from
    PermissionDenied, a 400 from SuspiciousOperation): the client was
    refused, nothing failed, and the line already says why."""

    def filter(self, record: logging.LogRecord) -> bool:
        if 400 <= getattr(record, "status_code", 500) < 500:
            record.exc_info = record.exc_text = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info or record.exc_text:
            entry["exc_info"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
