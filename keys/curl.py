"""Ready-to-paste curl commands for a key, as the operator's console shows
them. The key itself is never in them: ``$VEP_KEY`` stands in for it, since
the full key exists only on the page that created it."""

from __future__ import annotations

import json

from .models import ApiKey

KEY_PLACEHOLDER = "$VEP_KEY"
SAMPLE_MESSAGES = [{"role": "user", "content": "Hello! What can you do?"}]


def _command(url: str, headers: list[str], body: dict) -> str:
    # The body is our own JSON (no single quotes), so single-quoting it is safe.
    lines = [f"curl -sS {url}"]
    lines += [f'-H "{header}"' for header in headers]
    lines.append(f"-d '{json.dumps(body)}'")
    return " \\\n  ".join(lines)


def curl_commands(key: ApiKey, base_url: str) -> dict[str, str]:
    """``{"chat": ..., "openai": ...}``: one call each to /chat and
    /v1/chat/completions with ``key``'s settings. Neither names miners, so
    the key's default strategy (else the config's) picks them, as it would
    for the key's own clients."""
    base = base_url.rstrip("/")
    auth = [f"Authorization: Bearer {KEY_PLACEHOLDER}", "Content-Type: application/json"]
    return {
        "chat": _command(f"{base}/chat", [*auth, "Endpoint-Version: 2023-05-19"], {"messages": SAMPLE_MESSAGES}),
        "openai": _command(f"{base}/v1/chat/completions", auth, {"model": "auto", "messages": SAMPLE_MESSAGES}),
    }
