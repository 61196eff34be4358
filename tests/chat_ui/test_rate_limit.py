"""Issue 6, for the browser: a chat user is held to the rate limits on their
own counter, with the same rules and the same Redis windows as the API."""

from __future__ import annotations

import pytest

from endpoint.config import do_set_config
from endpoint.db import run_db

from .events import events

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def two_per_minute(network, redis_url):
    do_set_config("rate_limiting_enabled", "true")
    do_set_config("global_rate_limits", '[{"times": 2, "seconds": 60}]')


async def test_third_message_in_a_minute_waits_and_says_how_long(browser_for, alice, bob, two_per_minute, network):
    me = await browser_for(alice)
    for _ in range(2):
        events(await me.send("hi", strategy="uids", uids="0"))
    refused = await me.send("hi", strategy="uids", uids="0")

    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 55 <= wait <= 60
    assert refused.json()["error"] == f"You are sending messages too fast. Try again in {wait} seconds."
    assert len(network.miner(0).seen) == 2  # the refused message reached no miner

    # Counted per user: another user still has their own allowance.
    other = await browser_for(bob)
    events(await other.send("hi", strategy="uids", uids="0"))


async def test_refused_message_is_not_charged_or_kept(browser_for, alice, two_per_minute, network, settings):
    me = await browser_for(alice)
    for _ in range(2):
        events(await me.send("hi", strategy="uids", uids="0"))
    assert (await me.send("third", strategy="uids", uids="0")).status_code == 429

    from chat.models import Message
    from chat.services import chat_account

    account = await run_db(chat_account, alice)
    assert account.key.credits == settings.CHAT_SIGNUP_CREDITS - 2
    assert not await run_db(lambda: Message.objects.filter(content="third").exists())
