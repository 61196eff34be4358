"""Form fields the operator's console shares between keys and config: the
rate-limit rules editor (rows of "times per seconds" instead of raw JSON).

A rule is checked the way ``endpoint.ratelimits`` checks the CLI's: whole
numbers of at least 1; the result is the same list of
``{"times", "seconds"}`` dicts the limiter reads.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join

BLANK_ROWS = 3  # room for new rules under the existing ones


def _as_pairs(value: Any) -> list[tuple[str, str]]:
    """Rows to show: stored rules (dicts) or what was typed (pairs), blank
    rows left out: a form shown again after an error adds its own blanks
    once, instead of keeping the submitted ones and adding more."""
    pairs = []
    for rule in value or []:
        if isinstance(rule, dict):
            pairs.append((str(rule.get("times", "")), str(rule.get("seconds", ""))))
        else:
            times, seconds = rule
            pairs.append(("" if times is None else str(times), "" if seconds is None else str(seconds)))
    return [(times, seconds) for times, seconds in pairs if times.strip() or seconds.strip()]


class RateLimitRulesWidget(forms.Widget):
    """A table of rows, each "N requests per S seconds"; clear a row to drop it."""

    def render(self, name: str, value: Any, attrs: dict | None = None, renderer: Any = None) -> str:
        rows = _as_pairs(value)
        rows += [("", "")] * BLANK_ROWS
        body = format_html_join(
            "",
            '<tr><td><input type="number" min="1" step="1" name="{0}-{1}-times" value="{2}"'
            ' aria-label="Rule {3}: requests"></td><td>requests per</td>'
            '<td><input type="number" min="1" step="1" name="{0}-{1}-seconds" value="{4}"'
            ' aria-label="Rule {3}: seconds"></td><td>seconds</td></tr>',
            ((name, i, times, i + 1, seconds) for i, (times, seconds) in enumerate(rows)),
        )
        return format_html(
            '<table class="rate-rules" id="id_{0}"><tbody>{1}</tbody></table>'
            '<input type="hidden" name="{0}-rows" value="{2}">',
            name,
            body,
            len(rows),
        )

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[tuple[str, str]]:
        try:
            count = min(int(data.get(f"{name}-rows", 0)), 1000)
        except (TypeError, ValueError):
            count = 0
        rows = [(data.get(f"{name}-{i}-times", ""), data.get(f"{name}-{i}-seconds", "")) for i in range(count)]
        return rows

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        return f"{name}-rows" not in data


class RateLimitRulesField(forms.Field):
    widget = RateLimitRulesWidget

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[dict[str, int]]:
        rules, problems = [], []
        for number, (times, seconds) in enumerate(_as_pairs(value), start=1):
            times, seconds = times.strip(), seconds.strip()
            rule = {}
            for name, raw in (("times", times), ("seconds", seconds)):
                try:
                    rule[name] = int(raw)
                except ValueError:
                    rule[name] = 0
            if rule["times"] < 1 or rule["seconds"] < 1:
                problems.append(f"Rule {number}: requests and seconds must both be whole numbers of at least 1.")
                continue
            rules.append(rule)
        if problems:
            raise forms.ValidationError(problems)
        return rules

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return self.to_python(data) != [{"times": r["times"], "seconds": r["seconds"]} for r in initial or []]
        except (forms.ValidationError, KeyError, TypeError):
            return True
