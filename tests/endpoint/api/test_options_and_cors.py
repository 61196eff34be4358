"""OPTIONS on every API route answers 204 with Allow; browser apps may call
/chat and /v1 from the origins an operator names (CORS_ALLOWED_ORIGINS),
and from no other."""

from __future__ import annotations

import pytest

from .conftest import HELLO, bearer

APP = "https://app.example.com"
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}


@pytest.mark.parametrize(
    "path, allowed",
    [("/chat", "POST"), ("/v1/chat/completions", "POST"), ("/v1/models", "GET")],
)
async def test_options_answers_204_with_allow(api, path, allowed):
    r = await api.options(path)
    assert r.status_code == 204
    assert allowed in r.headers["Allow"] and "OPTIONS" in r.headers["Allow"]
    assert "access-control-allow-origin" not in r.headers


async def test_cors_is_off_by_default(api, settings):
    settings.CORS_ALLOWED_ORIGINS = []
    r = await api.options("/v1/chat/completions", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in r.headers


async def test_preflight_from_an_allowed_origin_lets_the_browser_send_its_key(api, settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    r = await api.options("/v1/chat/completions", headers=PREFLIGHT)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP
    assert "authorization" in r.headers["access-control-allow-headers"]
    assert "POST" in r.headers["access-control-allow-methods"]


async def test_preflight_from_another_origin_is_refused(api, settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    r = await api.options("/v1/chat/completions", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_answers_to_an_allowed_origin_carry_cors_and_rate_limit_headers(api, key, network, settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    r = await api.post("/chat", json={"messages": HELLO}, headers={**bearer(key), "Origin": APP})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP
    assert "retry-after" in r.headers["access-control-expose-headers"]
    missing = await api.post("/chat", json={"messages": HELLO}, headers={"Origin": APP})
    assert missing.status_code == 401 and missing.headers["access-control-allow-origin"] == APP


async def test_pages_and_the_admin_api_get_no_cors(api, settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    for path in ("/api/admin/keys/", "/health/live"):
        r = await api.get(path, headers={"Origin": APP})
        assert "access-control-allow-origin" not in r.headers, path


def test_options_on_the_management_api_answers_204_with_allow(admin_client):
    for path, method in (("/api/admin/keys/", "POST"), ("/api/admin/config/", "PATCH"), ("/api/keys/", "GET")):
        r = admin_client.options(path)
        assert r.status_code == 204, (path, r.content)
        assert method in r.headers["Allow"], path


@pytest.mark.parametrize(
    "path, shape",
    [("/v1/files", "openai"), ("/v1/", "openai"), ("/api/admin/nothing/", "seed"), ("/chat/more", "seed")],
)
async def test_unknown_api_routes_answer_json_404(api, path, shape):
    r = await api.post(path, json={})
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    body = r.json()
    code = body["error"]["code"] if shape == "openai" else body["code"]
    assert code == "not_found"


def test_unknown_pages_answer_the_html_404(client):
    r = client.get("/no/such/page/")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")
