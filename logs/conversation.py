"""A logged request's messages as an operator reads them in the admin: one
block a message, with its role, its text as written (line breaks and code
kept), the tools it called and the call a tool result answers. Everything a
client sent is escaped: a prompt can't put markup on an operator's page."""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def conversation_html(messages: Any) -> SafeString | str:
    if not isinstance(messages, list) or not messages:
        return "-"
    blocks = format_html_join("", "{}", ((_message(m),) for m in messages if isinstance(m, dict)))
    return format_html('<div class="conversation">{}</div>', blocks)


def _message(message: dict[str, Any]) -> SafeString:
    role = str(message.get("role", "?"))
    name = message.get("name")
    heading = f"{role} ({name})" if isinstance(name, str) and name else role
    answers = message.get("tool_call_id")
    if isinstance(answers, str) and answers:
        heading += f" · result of {answers}"
    calls = message.get("tool_calls")
    return format_html(
        '<div class="message role-{}"><div class="role">{}</div>{}{}</div>',
        role if role.isalnum() else "other",
        heading,
        _text(message.get("content")),
        format_html_join("", "{}", ((_call(c),) for c in calls if isinstance(c, dict)))
        if isinstance(calls, list)
        else "",
    )


def _text(content: Any) -> SafeString | str:
    if isinstance(content, list):  # OpenAI content parts
        parts = [
            p.get("text", "") if p.get("type") == "text" else f"[{p.get('type', 'part')}]"
            for p in content
            if isinstance(p, dict)
        ]
        content = "\n".join(str(p) for p in parts)
    if content is None or content == "":
        return ""
    return format_html('<div class="text">{}</div>', content if isinstance(content, str) else json.dumps(content))


def _call(call: dict[str, Any]) -> SafeString:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    arguments = function.get("arguments", "")
    try:
        arguments = json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        arguments = str(arguments)
    return format_html(
        '<div class="tool-call">calls <code>{}</code> ({})<pre>{}</pre></div>',
        function.get("name", "?"),
        call.get("id", ""),
        arguments,
    )


def media_html(items: list[tuple[str, str, str]]) -> SafeString | str:
    """A call's kept media ((url, content type, source) each): images shown,
    audio playable, anything else a link."""
    blocks = []
    for url, content_type, source in items:
        label = f"{source}, {content_type}"
        if content_type.startswith("image/"):
            blocks.append(format_html('<figure><img src="{}" alt="{}" style="max-width:320px"></figure>', url, label))
        elif content_type.startswith("audio/"):
            blocks.append(
                format_html('<figure><audio controls src="{}"></audio><figcaption>{}</figcaption></figure>', url, label)
            )
        else:
            blocks.append(format_html('<p><a href="{}">{}</a></p>', url, label))
    return format_html_join("", "{}", ((b,) for b in blocks)) if blocks else ""
