"""My API keys: create (the full key shown once; never without credits),
list, revoke after a confirmation page; a user sees and touches only their
own keys; the chat-balance key is not among them."""

from __future__ import annotations

import re

import pytest

from chat.services import chat_account
from endpoint.core.db import run_db
from keys.models import ApiKey
from tests.network_fixtures import HELLO

pytestmark = pytest.mark.postgres

FULL_KEY = re.compile(r'id="new-key-value" class="mono" readonly value="(vep_[^"]+)"')


async def _create(me, name: str, credits: int = 1):
    """Submit the form and, when it redirects, load the page it sends to (once)."""
    await me.page("/app/keys/")
    answer = await me.post_form("/app/keys/", {"name": name, "credits": str(credits)})
    return await me.page(answer.headers["location"]) if answer.status_code in (302, 303) else answer


async def test_new_key_is_shown_once_and_works_with_the_api(api, browser_for, alice, network, settings):
    me = await browser_for(alice)
    created = await _create(me, "my script", credits=10)

    assert created.status_code == 200 and "it is shown this once" in created.text
    raw = FULL_KEY.search(created.text).group(1)
    assert created.headers["Cache-Control"] == "no-store"
    again = await me.page("/app/keys/")
    assert raw not in again.text and raw[:8] + "…" in again.text
    assert "my script" in again.text
    assert f'<strong id="balance">{settings.CHAT_SIGNUP_CREDITS - 10}</strong>' in again.text

    answer = await api.post("/chat", json={"messages": HELLO, "uids": [1]}, headers={"Authorization": f"Bearer {raw}"})
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "Miner 1 heard: What is 1+1?"


async def test_refreshing_the_new_key_page_neither_shows_it_again_nor_creates_or_charges_again(
    browser_for, alice, network, settings, caplog
):
    me = await browser_for(alice)
    await me.page("/app/keys/")
    caplog.set_level("DEBUG")
    posted = await me.post_form("/app/keys/", {"name": "once", "credits": "10"})
    assert posted.status_code == 302  # post/redirect/get: the address bar holds a GET

    shown = await me.page(posted.headers["location"])
    raw = FULL_KEY.search(shown.text).group(1)
    refreshed = await me.page(posted.headers["location"])

    assert raw not in refreshed.text and not FULL_KEY.search(refreshed.text)
    assert "was already shown once" in refreshed.text
    assert await run_db(lambda: ApiKey.objects.filter(owner=alice, name="once").count()) == 1
    assert f'<strong id="balance">{settings.CHAT_SIGNUP_CREDITS - 10}</strong>' in refreshed.text
    assert raw not in caplog.text


async def test_chat_balance_key_is_not_listed(browser_for, alice, network):
    me = await browser_for(alice)
    account = await run_db(chat_account, alice)
    page = await me.page("/app/keys/")
    assert "You have no API keys yet." in page.text
    assert account.key.prefix not in page.text


async def test_cannot_move_more_credits_than_the_balance(browser_for, alice, network, settings):
    me = await browser_for(alice)
    refused = await _create(me, "greedy", credits=settings.CHAT_SIGNUP_CREDITS + 1)
    assert refused.status_code == 200
    assert "Your chat balance does not have that many credits." in refused.text
    assert not FULL_KEY.search(refused.text)
    assert not await run_db(lambda: ApiKey.objects.filter(name="greedy").exists())


async def test_a_key_without_credits_is_refused_and_nothing_moves(browser_for, alice, network, settings):
    me = await browser_for(alice)
    refused = await _create(me, "empty", credits=0)

    assert refused.status_code == 400
    assert "A new key needs at least 1 credit" in refused.text
    assert not FULL_KEY.search(refused.text)
    assert f'<strong id="balance">{settings.CHAT_SIGNUP_CREDITS}</strong>' in refused.text
    assert not await run_db(lambda: ApiKey.objects.filter(owner=alice, chat_account__isnull=True).exists())


async def test_revoking_asks_first_and_the_question_changes_nothing(browser_for, alice, network):
    me = await browser_for(alice)
    await _create(me, "kept", credits=3)
    key = await run_db(lambda: ApiKey.objects.get(name="kept"))

    asked = await me.page(f"/app/keys/{key.pk}/revoke/")
    assert asked.status_code == 200
    assert "Revoke “kept”?" in asked.text and "Its 3 credits go back to your chat balance." in asked.text
    assert 'href="/app/keys/"' in asked.text  # Cancel: back to the list
    key = await run_db(lambda: ApiKey.objects.get(name="kept"))
    assert (key.enabled, key.credits) == (True, 3)


async def test_revoke_disables_the_key_and_returns_its_credits(api, browser_for, alice, network, settings):
    me = await browser_for(alice)
    raw = FULL_KEY.search((await _create(me, "short-lived", credits=7)).text).group(1)
    key = await run_db(lambda: ApiKey.objects.get(name="short-lived"))

    revoked = await me.post_form(f"/app/keys/{key.pk}/revoke/", {})
    assert revoked.status_code == 302
    page = await me.page("/app/keys/")
    assert "Revoked" in page.text and f"/app/keys/{key.pk}/revoke/" not in page.text
    assert f'<strong id="balance">{settings.CHAT_SIGNUP_CREDITS}</strong>' in page.text
    asked_again = await me.page(f"/app/keys/{key.pk}/revoke/")
    assert "is already revoked" in asked_again.text and "Revoke key" not in asked_again.text
    answer = await api.post("/chat", json={"messages": HELLO}, headers={"Authorization": f"Bearer {raw}"})
    assert answer.status_code == 401 and answer.json()["code"] == "APIKeyDisabled"


async def test_another_users_key_is_not_found(browser_for, alice, bob, network):
    mine = await browser_for(alice)
    await _create(mine, "alice's key")
    key = await run_db(lambda: ApiKey.objects.get(name="alice's key"))
    other = await browser_for(bob)
    await other.page("/app/keys/")

    assert (await other.post_form(f"/app/keys/{key.pk}/revoke/", {})).status_code == 404
    assert (await other.client.get(f"/app/keys/{key.pk}/revoke/")).status_code == 404
    assert "alice&#x27;s key" not in (await other.page("/app/keys/")).text
    alice_chat_key = (await run_db(chat_account, alice)).key_id
    assert (await other.post_form(f"/app/keys/{alice_chat_key}/revoke/", {})).status_code == 404
    assert (await run_db(lambda: ApiKey.objects.get(pk=key.pk))).enabled
