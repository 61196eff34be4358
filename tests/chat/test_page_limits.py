"""Abuse limits of the pages: sign-ups and password resets per IP (allauth's
own limits), prompts from the chat page and key creation per user
(chat.limits). Over a limit: 429, as JSON where the caller reads JSON and as
a page saying so elsewhere; another IP or user is not affected."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from chat.services import chat_account
from chat.views import MALFORMED
from endpoint.core.db import run_db
from keys.models import ApiKey

from .conftest import PASSWORD, make_user
from .events import events

pytestmark = pytest.mark.postgres

TOO_MANY = "You have sent too many requests. Please try again later."


def test_defaults(settings):
    assert settings.ACCOUNT_RATE_LIMITS["signup"] == "5/h/ip"
    assert settings.ACCOUNT_RATE_LIMITS["reset_password"] == "5/h/ip,3/h/key"
    assert settings.CHAT_SEND_RATE == "60/m"
    assert settings.KEY_CREATE_RATE == "10/h"


def test_sixth_sign_up_from_one_ip_in_an_hour_is_refused(postgres):
    here, elsewhere = Client(REMOTE_ADDR="203.0.113.5"), Client(REMOTE_ADDR="198.51.100.7")
    for n in range(5):
        form = {"email": f"new{n}@example.com", "password1": PASSWORD, "password2": PASSWORD}
        assert here.post("/accounts/signup/", form).status_code == 302

    form = {"email": "one-more@example.com", "password1": PASSWORD, "password2": PASSWORD}
    refused = here.post("/accounts/signup/", form)
    assert refused.status_code == 429
    assert TOO_MANY in refused.content.decode()
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(email="one-more@example.com").exists()
    assert elsewhere.post("/accounts/signup/", form).status_code == 302


def test_sixth_password_reset_from_one_ip_in_an_hour_is_refused(postgres):
    for n in range(6):
        make_user(f"user{n}@example.com")
    here, elsewhere = Client(REMOTE_ADDR="203.0.113.5"), Client(REMOTE_ADDR="198.51.100.7")
    for n in range(5):
        assert here.post("/accounts/password/reset/", {"email": f"user{n}@example.com"}).status_code == 302

    refused = here.post("/accounts/password/reset/", {"email": "user5@example.com"})
    assert refused.status_code == 429
    assert TOO_MANY in refused.content.decode()
    assert elsewhere.post("/accounts/password/reset/", {"email": "user5@example.com"}).status_code == 302


def test_fourth_reset_for_one_email_in_an_hour_is_refused_from_any_ip(postgres):
    make_user("target@example.com")
    for n in range(3):
        assert (
            Client(REMOTE_ADDR=f"203.0.113.{n}")
            .post("/accounts/password/reset/", {"email": "target@example.com"})
            .status_code
            == 302
        )
    refused = Client(REMOTE_ADDR="198.51.100.9").post("/accounts/password/reset/", {"email": "target@example.com"})
    assert refused.status_code == 429


async def test_sends_past_the_limit_get_429_json(browser_for, alice, bob, network, settings):
    settings.CHAT_SEND_RATE = "3/h"  # fixed windows: an hour's is unlikely to roll over mid-test
    me = await browser_for(alice)
    events(await me.send("hi", strategy="uids", uids="0"))
    assert (await me.send("")).status_code == 400  # a refused prompt counts too
    events(await me.send("hi", strategy="uids", uids="0"))

    refused = await me.send("hi", strategy="uids", uids="0")

    assert refused.status_code == 429
    body = refused.json()
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 3600
    assert body == {
        "error": f"You are sending messages too fast. Try again in {wait} seconds.",
        "code": "RateLimitExceeded",
        "retry_after": wait,
    }
    assert len(network.miner(0).seen) == 2
    other = await browser_for(bob)
    events(await other.send("hi", strategy="uids", uids="0"))


async def test_the_send_limit_counts_before_reading_the_body(browser_for, alice, settings):
    settings.CHAT_SEND_RATE = "1/h"
    me = await browser_for(alice)
    await me.page("/app/")
    headers = {"X-CSRFToken": me.csrf, "Referer": "http://testserver/app/"}
    first = await me.client.post("/app/send/", content=b"garbage", headers=headers)
    assert (first.status_code, first.json()["error"]) == (400, MALFORMED)
    assert (await me.client.post("/app/send/", content=b"garbage", headers=headers)).status_code == 429


def test_key_creation_limit_is_shared_by_the_page_and_the_api(postgres, settings):
    settings.KEY_CREATE_RATE = "2/h"
    alice, bob = make_user("alice@example.com"), make_user("bob@example.com")
    balance = chat_account(alice).key.credits
    page = Client()
    page.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    api = APIClient()
    api.force_login(alice)

    assert (
        "it is shown this once"
        in page.post("/app/keys/", {"name": "one", "credits": "1"}, follow=True).content.decode()
    )
    assert api.post("/api/keys/", {"name": "two", "credits": 1}, format="json").status_code == 201

    refused_api = api.post("/api/keys/", {"name": "three", "credits": 1}, format="json")
    assert refused_api.status_code == 429
    assert refused_api.json()["code"] == "RateLimitExceeded"
    assert refused_api.json()["detail"].startswith("You are creating keys too fast. Try again in ")
    assert int(refused_api["Retry-After"]) >= 1

    refused_page = page.post("/app/keys/", {"name": "four", "credits": "1"})
    assert refused_page.status_code == 429
    text = refused_page.content.decode()
    assert "You are creating keys too fast. Try again in " in text and "it is shown this once" not in text
    assert sorted(ApiKey.objects.filter(owner=alice, chat_account__isnull=True).values_list("name", flat=True)) == [
        "one",
        "two",
    ]
    assert chat_account(alice).key.credits == balance - 2

    others = APIClient()
    others.force_login(bob)
    assert others.post("/api/keys/", {"name": "bob's", "credits": 1}, format="json").status_code == 201


async def test_page_limits_count_per_user_not_per_session(browser_for, alice, settings):
    settings.KEY_CREATE_RATE = "1/h"
    first, second = await browser_for(alice), await browser_for(alice)
    await first.page("/app/keys/")
    await second.page("/app/keys/")
    assert (await first.post_form("/app/keys/", {"name": "a", "credits": "1"})).status_code == 302  # made: to the key
    assert (await second.post_form("/app/keys/", {"name": "b", "credits": "1"})).status_code == 429
    assert await run_db(lambda: ApiKey.objects.filter(owner=alice, name="b").exists()) is False
