"""The console's lists, searches and filters answer hostile query strings
with a page or a 4xx, never a 500 (NUL bytes, huge numbers, bad dates)."""

from __future__ import annotations

import pytest

from tests.factories import ApiKeyFactory, RequestLogFactory

HOSTILE = ["\x00", "a\x00b", "9" * 40, "-1", "%", "' OR 1=1 --", "\\", "x" * 5000]
LISTS = ["/admin/keys/apikey/", "/admin/logs/request/", "/admin/endpoint/neuron/"]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize(
    "value", HOSTILE, ids=["NUL", "NUL inside", "huge number", "negative", "percent", "sql", "backslash", "long"]
)
def test_search_never_fails(console, path, value):
    ApiKeyFactory(name="partner")
    RequestLogFactory(messages=[{"role": "user", "content": "hello"}])
    r = console.get(path, {"q": value})
    assert r.status_code in (200, 400), r.status_code


@pytest.mark.parametrize(
    "query",
    [
        {"status": "\x00"},
        {"status": "abc"},
        {"key__id__exact": "9" * 40},
        {"key__id__exact": "\x00"},
        {"started_at__gte": "not a date"},
        {"started_at__gte": "\x00"},
        {"o": "\x00"},
        {"p": "9" * 40},
        {"api_error": "\x00"},
        {"route": "\x00"},
    ],
)
def test_log_filters_never_fail(console, query):
    RequestLogFactory()
    assert console.get("/admin/logs/request/", query).status_code in (200, 302, 400)
    assert console.get("/admin/logs/request/export/", query).status_code in (200, 302, 400)


@pytest.mark.parametrize("pk", ["\x00", "9" * 40, "-1", "abc"])
def test_change_pages_of_odd_ids_are_not_found(console, pk):
    for path in ("/admin/keys/apikey/", "/admin/logs/request/", "/admin/endpoint/neuron/"):
        assert console.get(f"{path}{pk}/change/").status_code in (302, 400, 404), (path, pk)


def test_nul_in_a_form_is_refused_before_anything_is_saved(console):
    key = ApiKeyFactory(name="partner")
    r = console.post(f"/admin/keys/apikey/{key.pk}/change/", {"name": "a\x00b", "credits": "5"})
    assert r.status_code == 400 and b"NUL" in r.content
    key.refresh_from_db()
    assert key.name == "partner"


def test_nul_in_the_management_api_query_is_a_json_400(console):
    r = console.get("/api/admin/logs/", {"route": "\x00"})
    assert r.status_code == 400 and r.json()["code"] == "InvalidRequestBody"
