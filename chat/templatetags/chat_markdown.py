from django import template
from django.utils.safestring import SafeString, mark_safe

from chat.markdown import render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    # Safe to mark: render_markdown escapes raw HTML and sanitizes the result with nh3.
    return mark_safe(render_markdown(text))
