"""The request logs' key and date filters: a key is found by typing (the
page never lists every key), a date range narrows the rows to those days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from tests.factories import ApiKeyFactory, RequestLogFactory, UserFactory
from tests.viewers import viewer_group

LOGS = "/admin/logs/request/"
CHOICES = LOGS + "keys/"


@pytest.fixture
def many_keys(postgres):
    keys = [ApiKeyFactory(name=f"bulk key {i:03d}") for i in range(300)]
    for key in keys[:3]:
        RequestLogFactory(key=key)
    return keys


def listed(console, query: str) -> set:
    response = console.get(LOGS + query)
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def test_the_request_list_does_not_list_every_key(console, many_keys, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        page = console.get(LOGS).text
    assert 'id="key-filter"' in page and f'data-ajax--url="{CHOICES}"' in page
    # The three keys with requests appear in their rows; none of the others anywhere.
    assert sum(f"bulk key {i:03d}" in page for i in range(300)) == 3


def test_key_choices_come_as_the_operator_types(console, many_keys):
    found = console.get(CHOICES, {"term": "key 01"}).json()
    assert [r["text"].split(" (")[0] for r in found["results"]] == [f"bulk key {i:03d}" for i in range(10, 20)]
    assert found["pagination"] == {"more": False}

    by_prefix = console.get(CHOICES, {"term": many_keys[42].prefix}).json()["results"]
    assert {"id": str(many_keys[42].pk), "text": str(many_keys[42])} in by_prefix

    first = console.get(CHOICES).json()
    assert len(first["results"]) == 20 and first["pagination"] == {"more": True}
    second = console.get(CHOICES, {"page": 2}).json()["results"]
    assert second[0]["text"].startswith("bulk key 020")


def test_choosing_a_key_narrows_the_rows_and_shows_its_name(console, many_keys):
    key = many_keys[1]
    page = console.get(LOGS, {"key__id__exact": key.pk, "status": "2xx"})
    assert {row.key_id for row in page.context["cl"].result_list} == {key.pk}
    assert f'<option value="{key.pk}" selected>{key}</option>' in page.text
    # the other filters stay when another key is chosen
    assert '<input type="hidden" name="status" value="2xx">' in page.text
    for bad in ("abc", "²"):
        assert console.get(LOGS, {"key__id__exact": bad}).status_code == 302  # the admin's "?e=1"


def test_a_viewer_finds_keys_for_the_filter_but_not_the_keys_pages(many_keys):
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.groups.add(viewer_group())
    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/keys/apikey/").status_code == 403
    assert client.get(CHOICES, {"term": "bulk key 000"}).json()["results"][0]["id"] == str(many_keys[0].pk)
    assert Client().get(CHOICES).status_code == 302  # to the login page


def test_a_date_range_narrows_the_rows_to_those_days(console, postgres):
    def at(day: int, hour: int = 12, minute: int = 0, second: int = 0):
        return RequestLogFactory(started_at=datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)).pk

    before, first, last, after = at(9, 23, 59, 59), at(10, 0), at(20, 23, 59, 59), at(21, 0)
    assert listed(console, "?started_at__range__gte=2026-11-10&started_at__range__lte=2026-11-20") == {first, last}
    assert listed(console, "?started_at__range__gte=2026-11-20") == {last, after}
    assert listed(console, "?started_at__range__lte=2026-11-09") == {before}
    page = console.get(LOGS).text
    assert 'name="started_at__range__gte"' in page and 'name="started_at__range__lte"' in page
