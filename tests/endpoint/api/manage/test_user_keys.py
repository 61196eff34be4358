"""/api/keys/: a signed-in user's own keys, the keys page's functions as
JSON. Nobody sees, reads or revokes another user's key."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import async_to_sync
from rest_framework.test import APIClient

from chat.services import chat_account
from keys.models import ApiKey
from keys.services import aauthenticate_key
from tests.factories import ApiKeyFactory, UserFactory

RAW_KEY = re.compile(r"vep_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def bobs_key(db):
    return ApiKeyFactory(name="bob's", owner=UserFactory(username="bob"), credits=5)


def test_create_shows_the_key_once_funded_from_the_chat_balance(user_api, user, settings, transactional_db):
    settings.CHAT_SIGNUP_CREDITS = 100
    r = user_api.post("/api/keys/", {"name": "laptop", "credits": 30}, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert RAW_KEY.fullmatch(body["key"])
    assert (body["name"], body["credits"]) == ("laptop", 30)
    # Committed, so the gateway's DB threads see it.
    assert async_to_sync(aauthenticate_key)(body["key"]).owner == user
    assert chat_account(user).key.credits == 70

    listed = user_api.get("/api/keys/")
    assert [k["name"] for k in listed.json()["results"]] == ["laptop"]  # not the chat-balance key
    assert RAW_KEY.search(listed.content.decode()) is None


def test_create_beyond_the_balance_is_402(user_api, user, settings):
    settings.CHAT_SIGNUP_CREDITS = 10
    r = user_api.post("/api/keys/", {"name": "big", "credits": 11}, format="json")
    assert r.status_code == 402
    assert r.json()["code"] == "APIKeyNotEnoughCredits"
    assert not ApiKey.objects.filter(name="big").exists()
    assert user_api.post("/api/keys/", {"name": ""}, format="json").status_code == 400


def test_a_key_without_credits_is_refused_and_nothing_moves(user_api, user, settings):
    settings.CHAT_SIGNUP_CREDITS = 10
    for body in ({"name": "empty", "credits": 0}, {"name": "empty"}):
        r = user_api.post("/api/keys/", body, format="json")
        assert r.status_code == 400
        assert "A new key needs at least 1 credit" in str(r.json())
    assert not ApiKey.objects.filter(name="empty").exists()
    assert chat_account(user).key.credits == 10


def test_revoke_disables_the_key_and_refunds_its_credits(user_api, user, settings):
    settings.CHAT_SIGNUP_CREDITS = 100
    made = user_api.post("/api/keys/", {"name": "temp", "credits": 40}, format="json").json()
    r = user_api.delete(f"/api/keys/{made['id']}/")
    assert r.status_code == 204
    key = ApiKey.objects.get(pk=made["id"])
    assert (key.enabled, key.credits) == (False, 0)
    assert chat_account(user).key.credits == 100


def test_another_users_key_is_404_for_every_verb(user_api, bobs_key):
    assert user_api.get("/api/keys/").json()["results"] == []
    assert user_api.get(f"/api/keys/{bobs_key.pk}/").status_code == 404
    r = user_api.delete(f"/api/keys/{bobs_key.pk}/")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    bobs_key.refresh_from_db()
    assert (bobs_key.enabled, bobs_key.credits) == (True, 5)


def test_the_chat_balance_key_cannot_be_revoked_here(user_api, user):
    balance_key = chat_account(user).key
    assert user_api.delete(f"/api/keys/{balance_key.pk}/").status_code == 404
    assert ApiKey.objects.get(pk=balance_key.pk).enabled


def test_staff_see_their_own_keys_here_not_everyones(staff, bobs_key):
    client = APIClient()
    client.force_login(staff)
    assert client.get("/api/keys/").json()["results"] == []
