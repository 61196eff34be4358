"""Miner answers as HTML: markdown rendered, then sanitized.

Answers come from miners, i.e. strangers: raw HTML in them is never passed
through (markdown-it escapes it), and the rendered HTML goes through nh3 with
a short allow-list: links only to http(s)/mailto, no images (no tracking
pixels, no requests on a reader's behalf), no attribute that can carry script."""

from __future__ import annotations

import html

import nh3
from markdown_it import MarkdownIt

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "a",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}
# "language-python" on code blocks, for a reader's eye; nothing else gets a class.
CODE_LANGUAGES = {
    "bash", "c", "cpp", "css", "diff", "go", "html", "java", "javascript", "js", "json", "python", "py",
    "rust", "sh", "shell", "sql", "text", "toml", "ts", "typescript", "xml", "yaml",
}  # fmt: skip


def render_markdown(text: str) -> str:
    """Safe HTML for ``text`` written in markdown."""
    html = _markdown.render(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes={"code": {f"language-{name}" for name in CODE_LANGUAGES}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def plain_text(text: str) -> str:
    """The words a reader of ``text`` (markdown) sees, without its markup:
    for a title made from a message."""
    return html.unescape(nh3.clean(_markdown.render(text or ""), tags=set()))
