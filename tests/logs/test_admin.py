"""Request logs in the console: read-only, filtered, searched, exported."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from logs.models import Request
from tests.factories import ApiKeyFactory, MinerResponseFactory, RequestLogFactory

LOGS = "/admin/logs/request/"


def prompt(text: str) -> list[dict]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


@pytest.fixture
def traffic(postgres):
    """A small day of traffic: successes, refusals, miners failing."""
    key = ApiKeyFactory(name="partner")
    other = ApiKeyFactory(name="other")
    now = timezone.now()
    return {
        "ok": RequestLogFactory(
            key=key, messages=prompt("capital of France?"), started_at=now, prompt_tokens=20, completion_tokens=3
        ),
        "limited": RequestLogFactory(
            key=key, status=429, api_error="RateLimitExceeded", credits_charged=0, messages=prompt("again")
        ),
        "failed": RequestLogFactory(
            key=other, status=502, api_error="AllMinersFailed", route="/v1/chat/completions", credits_charged=0
        ),
        "old": RequestLogFactory(key=other, started_at=now - timedelta(days=40), messages=prompt("ancient question")),
        "key": key,
    }


def listed(console, query: str) -> set:
    response = console.get(LOGS + query)
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def test_filters(console, traffic):
    t = traffic
    assert listed(console, "?status=2xx") == {t["ok"].pk, t["old"].pk}
    assert listed(console, "?status=429") == {t["limited"].pk}
    assert listed(console, "?status=5xx") == {t["failed"].pk}
    assert listed(console, "?api_error=AllMinersFailed") == {t["failed"].pk}
    assert listed(console, "?route=/v1/chat/completions") == {t["failed"].pk}
    assert listed(console, f"?key__id__exact={t['key'].pk}") == {t["ok"].pk, t["limited"].pk}
    since = (timezone.now() - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    past_week = listed(console, "?" + urlencode({"started_at__gte": since.isoformat()}))
    assert t["old"].pk not in past_week and t["ok"].pk in past_week


def test_filter_choices_offer_every_error_code(console, traffic):
    page = console.get(LOGS).text
    for code in ("RateLimitExceeded", "APIKeyExpired", "AllMinersFailed", "MetagraphNotSynced"):
        assert f"api_error={code}" in page


def test_search_finds_prompt_text(console, traffic):
    assert listed(console, "?q=France") == {traffic["ok"].pk}
    assert listed(console, "?q=ANCIENT") == {traffic["old"].pk}
    page = console.get(LOGS + "?q=France").text
    assert "capital of France?" in page  # the prompt column


def test_request_page_shows_its_miner_responses_read_only(console, traffic):
    logged = traffic["ok"]
    MinerResponseFactory(request=logged, uid=3, hotkey="5Answered", response="Paris", response_ms=42)
    MinerResponseFactory(request=logged, uid=5, hotkey="5Timedout", is_success=False, response="", error="timed out")

    page = console.get(f"{LOGS}{logged.pk}/change/")

    assert page.status_code == 200
    for text in ("5Answered", "Paris", "5Timedout", "timed out", "capital of France?"):
        assert text in page.text
    assert 'name="_save"' not in page.text


def test_request_page_shows_the_messages_as_a_conversation_with_tool_calls(console, postgres):
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    logged = RequestLogFactory(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "Weather?\n```\n<script>alert(1)</script>\n```"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
            {"role": "user", "content": [{"type": "text", "text": "and tomorrow?"}, {"type": "image_url"}]},
        ]
    )

    page = console.get(f"{LOGS}{logged.pk}/change/").text

    assert page.count('<div class="role">') == 5
    assert '<div class="role">tool · result of call_1</div>' in page
    assert "calls <code>get_weather</code> (call_1)" in page and "&quot;city&quot;: &quot;Paris&quot;" in page
    assert "and tomorrow?\n[image_url]" in page
    # What the client wrote is text, never markup on the operator's page; the layout's own markup is not escaped.
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;div" not in page and "&lt;p&gt;" not in page


def test_logs_cannot_be_added_changed_or_deleted(console, traffic):
    logged = traffic["ok"]
    assert console.get(LOGS + "add/").status_code == 403
    assert console.post(f"{LOGS}{logged.pk}/change/", {"status": 500}).status_code == 403
    assert console.post(f"{LOGS}{logged.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Request.objects.get(pk=logged.pk).status == 200


def read_csv(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export_has_the_filtered_rows(console, traffic):
    rows = read_csv(console.get(f"{LOGS}export/?key__id__exact={traffic['key'].pk}"))
    assert {row["id"] for row in rows} == {str(traffic["ok"].pk), str(traffic["limited"].pk)}
    limited = next(row for row in rows if row["status"] == "429")
    assert limited["api_error"] == "RateLimitExceeded"
    assert limited["key_name"] == "partner"
    assert limited["prompt"] == "again"
    assert (limited["prompt_tokens"], limited["completion_tokens"]) == ("", "")  # nothing was answered
    ok = next(row for row in rows if row["status"] == "200")
    assert (ok["prompt_tokens"], ok["completion_tokens"], ok["prompt"]) == ("20", "3", "capital of France?")
    assert "Export CSV" in console.get(LOGS).text


def test_csv_export_streams_every_row_in_batches(console, postgres):
    key = ApiKeyFactory()
    start = timezone.now()
    Request.objects.bulk_create(
        Request(key=key, route="/chat", status=200, started_at=start - timedelta(seconds=i % 7), messages=[])
        for i in range(2_345)
    )
    rows = read_csv(console.get(LOGS + "export/"))
    assert len(rows) == 2_345
    assert len({row["id"] for row in rows}) == 2_345
    times = [row["started_at"] for row in rows]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("rows", [5, 50])
def test_changelist_queries_do_not_grow_with_rows(console, django_assert_max_num_queries, rows):
    keys = ApiKeyFactory.create_batch(3)
    for i in range(rows):
        RequestLogFactory(key=keys[i % 3], key__owner=None)
    with django_assert_max_num_queries(7):
        response = console.get(LOGS)
    assert len(response.context["cl"].result_list) == rows
