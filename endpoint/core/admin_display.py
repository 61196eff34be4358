"""How the console shows a long value in a list: cut to its column's width
by CSS (static/admin_console/console.css), whole on hover."""

from __future__ import annotations

from django.utils.html import format_html


def clipped(text: str, kind: str) -> str:
    return format_html('<span class="clip clip-{}" title="{}">{}</span>', kind, text, text)
