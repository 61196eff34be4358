"""Who gets in: staff by session (with CSRF on writes) or admin token;
everyone else gets a clear 401/403 in JSON."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from keys.models import ApiKey
from tests.factories import ApiKeyFactory, UserFactory

ADMIN_ROUTES = [
    ("get", "/api/admin/keys/"),
    ("post", "/api/admin/keys/"),
    ("get", "/api/admin/keys/1/"),
    ("patch", "/api/admin/keys/1/"),
    ("delete", "/api/admin/keys/1/"),
    ("post", "/api/admin/keys/1/credits/"),
    ("get", "/api/admin/logs/"),
    ("get", "/api/admin/logs/count/"),
    ("get", "/api/admin/stats/"),
    ("get", "/api/admin/config/"),
    ("patch", "/api/admin/config/"),
    ("get", "/api/admin/ratelimits/"),
    ("patch", "/api/admin/ratelimits/"),
    ("get", "/api/admin/ratelimits/rules/"),
    ("post", "/api/admin/ratelimits/rules/"),
    ("delete", "/api/admin/ratelimits/rules/0/"),
]


def call(client, method: str, url: str):
    return getattr(client, method)(url, {} if method != "get" else None, format="json")


@pytest.mark.parametrize(("method", "url"), ADMIN_ROUTES)
def test_anonymous_callers_get_401_asking_for_a_token(db, anonymous, method, url):
    r = call(anonymous, method, url)
    assert r.status_code == 401
    assert r["WWW-Authenticate"] == "Token"
    assert r.json() == {"detail": "Authentication credentials were not provided.", "code": "not_authenticated"}


@pytest.mark.parametrize(("method", "url"), ADMIN_ROUTES)
def test_a_signed_in_ordinary_user_gets_403(user_api, method, url):
    r = call(user_api, method, url)
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"


def test_an_ordinary_users_token_opens_nothing(db):
    token = Token.objects.create(user=UserFactory(username="bob"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    r = client.get("/api/admin/keys/")
    assert r.status_code == 403
    assert r.json()["detail"] == "Admin tokens are for staff users only."


@pytest.mark.parametrize("scheme", ["Bearer", "Token"])
def test_an_api_key_is_not_an_admin_token(db, anonymous, scheme):
    key = ApiKeyFactory()
    anonymous.credentials(HTTP_AUTHORIZATION=f"{scheme} {key.raw}")
    r = anonymous.get("/api/admin/keys/")
    assert r.status_code == 401
    assert "detail" in r.json()


def test_a_wrong_token_is_401(db, anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    r = anonymous.get("/api/admin/keys/")
    assert r.status_code == 401
    assert r.json() == {"detail": "Invalid token.", "code": "authentication_failed"}


def test_staff_token_lists_keys(admin_api):
    ApiKeyFactory(name="acme")
    r = admin_api.get("/api/admin/keys/")
    assert r.status_code == 200
    assert [k["name"] for k in r.json()["results"]] == ["acme"]


def test_staff_session_reads_without_csrf_but_writes_need_it(staff):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    assert browser.get("/api/admin/keys/").status_code == 200

    refused = browser.post("/api/admin/keys/", {"name": "x"}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not ApiKey.objects.exists()

    browser.get("/admin/")  # any page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    made = browser.post("/api/admin/keys/", {"name": "x"}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert made.status_code == 201
    assert ApiKey.objects.get().name == "x"


def test_user_routes_need_a_signed_in_user(db, anonymous):
    r = anonymous.get("/api/keys/")
    assert r.status_code == 403
    assert r.json()["code"] == "not_authenticated"


def test_writes_are_logged_with_who_did_them_and_never_the_secret(admin_api, caplog):
    with caplog.at_level(logging.INFO, logger="endpoint.api.manage"):
        r = admin_api.post("/api/admin/keys/", {"name": "audited"}, format="json")
    raw, prefix = r.json()["key"], r.json()["prefix"]
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "endpoint.api.manage"]
    assert any("ops (token) created" in line and prefix in line for line in lines), lines
    assert all(raw not in rec.getMessage() for rec in caplog.records)
