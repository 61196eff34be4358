"""Who gets in: staff by session (with CSRF on writes) or admin token, each
call then needing the Django model permission the admin would ask for;
everyone else gets a clear 401/403 in JSON."""

from __future__ import annotations

import itertools
import logging

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from endpoint.core.models import EndpointConfig
from keys.models import ApiKey
from tests.endpoint.roles import grant, make_user
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


# --- model permissions, as the admin checks them --------------------------------------


CLERKS = itertools.count()


def staff_with(*perms: str) -> APIClient:
    """A fresh staff user holding exactly ``perms``, signed in."""
    client = APIClient()
    client.force_login(grant(make_user(f"clerk{next(CLERKS)}", staff=True), *perms))
    return client


def test_staff_without_model_permissions_may_not_even_read(db):
    r = staff_with().get("/api/admin/keys/")
    assert r.status_code == 403
    assert r.json() == {"detail": "You need the keys.view_apikey permission.", "code": "permission_denied"}


def test_moving_credits_is_changing_the_key(db):
    key = ApiKeyFactory(credits=10)
    body = {"delta": 5, "reason": "goodwill"}
    creator = staff_with("keys.view_apikey", "keys.add_apikey")
    assert creator.post(f"/api/admin/keys/{key.pk}/credits/", body, format="json").status_code == 403
    editor = staff_with("keys.view_apikey", "keys.change_apikey")
    assert editor.post(f"/api/admin/keys/{key.pk}/credits/", body, format="json").json()["credits"] == 15


def test_a_keys_rules_are_the_keys_the_global_ones_the_configs(db):
    key = ApiKeyFactory()
    key_editor = staff_with("keys.view_apikey", "keys.change_apikey")
    rule = {"times": 5, "seconds": 1}

    own = key_editor.post("/api/admin/ratelimits/rules/", {**rule, "key": key.prefix}, format="json")
    assert own.status_code == 201
    for whose in ({}, {"key": ""}, {"key": "  "}, {"key": None}):  # all mean the global rules
        r = key_editor.post("/api/admin/ratelimits/rules/", {**rule, **whose}, format="json")
        assert r.status_code == 403
        assert r.json()["detail"] == "You need the endpoint.change_endpointconfig permission."
    assert key_editor.patch("/api/admin/ratelimits/", {"enabled": False}, format="json").status_code == 403
    assert EndpointConfig.load().global_rate_limits == []

    config_editor = staff_with("endpoint.view_endpointconfig", "endpoint.change_endpointconfig")
    assert config_editor.post("/api/admin/ratelimits/rules/", rule, format="json").status_code == 201
    assert config_editor.delete(f"/api/admin/ratelimits/rules/0/?key={key.pk}").status_code == 403
    assert ApiKey.objects.get(pk=key.pk).rate_limits == [rule]
