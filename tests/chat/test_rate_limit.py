"""Rate limits for people: a chat user is held to the rate limits on their
own counter, with the same rules and the same Redis windows as the API, and
the keys they made count on that same counter."""

from __future__ import annotations

import pytest

from chat.services import chat_account
from endpoint.core.config import do_set_config
from endpoint.core.db import run_db
from keys.rate_limits import do_add_rate_limit
from keys.services import do_create_key
from keys.user_keys import do_create_user_key
from tests.network_fixtures import HELLO

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


async def test_refused_message_is_not_charged_and_kept_with_why(browser_for, alice, two_per_minute, network, settings):
    me = await browser_for(alice)
    for _ in range(2):
        events(await me.send("hi", strategy="uids", uids="0"))
    refused = await me.send("third", strategy="uids", uids="0")
    assert refused.status_code == 429

    from chat.models import Message
    from chat.services import chat_account

    account = await run_db(chat_account, alice)
    assert account.key.credits == settings.CHAT_SIGNUP_CREDITS - 2
    assert len(network.miner(0).seen) == 2
    # Kept, so a reload shows the message, why it went unanswered, and a Retry.
    page = await me.page(refused.json()["conversation"]["url"])
    assert "third" in page.text and "You are sending messages too fast." in page.text
    assert ">Retry</button>" in page.text
    answer = await run_db(lambda: Message.objects.filter(role="assistant").last())
    assert answer.content == "" and answer.error.startswith("You are sending messages too fast.")


async def test_a_users_keys_and_chat_share_one_allowance(api, browser_for, alice, bob, two_per_minute, network):
    """Whichever face a call comes through, a user's own keys and their chat
    count on the user's counter: two own keys and the chat page give two
    calls a minute in all, not two each."""
    first, second = [await run_db(_create_user_key, alice, name, 10) for name in ("laptop", "server")]

    one = await api.post("/chat", json={"messages": HELLO, "uids": [0]}, headers=_bearer(first.raw))
    assert one.status_code == 200
    events(await (await browser_for(alice)).send("hi", strategy="uids", uids="0"))
    third = await api.post(
        "/v1/chat/completions", json={"model": "uid:0", "messages": HELLO}, headers=_bearer(second.raw)
    )

    assert third.status_code == 429
    assert third.json()["error"]["code"] == "RateLimitExceeded"
    assert 55 <= int(third.headers["Retry-After"]) <= 60
    assert len(network.miner(0).seen) == 2
    # Another user, and an operator's key (no owner), have allowances of their own.
    bobs = await run_db(_create_user_key, bob, "bob's", 10)
    assert (await api.post("/chat", json={"messages": HELLO}, headers=_bearer(bobs.raw))).status_code == 200
    operator = await run_db(do_create_key, name="operator", credits=10)
    assert (await api.post("/chat", json={"messages": HELLO}, headers=_bearer(operator.raw))).status_code == 200


async def test_a_keys_own_rules_count_on_its_owners_counter(api, alice, two_per_minute, network):
    """A key with rules of its own is held to them, still on its owner's counter."""
    first, second = [await run_db(_create_user_key, alice, name, 10) for name in ("a", "b")]
    for new in (first, second):
        await run_db(do_add_rate_limit, 1, 60, key=new.key)

    assert (await api.post("/chat", json={"messages": HELLO}, headers=_bearer(first.raw))).status_code == 200
    refused = await api.post("/chat", json={"messages": HELLO}, headers=_bearer(second.raw))
    assert refused.status_code == 429
    assert "at most 1 requests per 60 seconds" in refused.json()["detail"]


def _bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def _create_user_key(user, name: str, credits: int):
    """As the keys page makes one: funded from the user's chat balance."""
    return do_create_user_key(user, name, credits, balance=chat_account(user).key)
