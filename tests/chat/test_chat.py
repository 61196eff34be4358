"""Chatting from the page: the answer streams from a real miner, is stored in
the user's conversation, is paid for and logged like an API call."""

from __future__ import annotations

import pytest

from chat.models import Conversation, Message
from chat.services import chat_account
from logs.models import Request

from .events import events, final_html, streamed_text

pytestmark = pytest.mark.postgres


async def test_signed_out_visitor_is_sent_to_sign_in(api):
    response = await api.get("/app/")
    assert response.status_code == 302
    assert response.headers["location"].startswith("/accounts/login/?next=/app/")


async def test_answer_streams_from_the_chosen_uid_and_is_kept(browser_for, alice, network):
    me = await browser_for(alice)
    reply = await me.send("What is 1+1?", strategy="uids", uids="3")
    got = events(reply)

    start = next(e for e in got if e["event"] == "start")
    assert start["uid"] == 3 and start["hotkey"] == network.miner(3).hotkey
    assert streamed_text(got) == "Miner 3 heard: What is 1+1?"
    assert "uid 3" in final_html(got)
    conversation = next(e for e in got if e["event"] == "conversation")
    assert conversation["title"] == "What is 1+1?"

    page = await me.page(conversation["url"])
    assert "Miner 3 heard: What is 1+1?" in page.text
    assert '<span class="badge uid-badge" title="Answered by uid 3">uid 3</span>' in page.text
    assert f'href="{conversation["url"]}"' in page.text  # in the sidebar


async def test_best_miners_can_be_asked_from_the_settings_panel(browser_for, alice, network):
    me = await browser_for(alice)
    got = events(await me.send("hello", strategy="best", best_n="2"))
    start = next(e for e in got if e["event"] == "start")
    assert streamed_text(got) == f"Miner {start['uid']} heard: hello"
    log = await _only_request(alice)
    assert log.strategy == "best:2"  # as the API writes it
    page = await me.page("/app/")
    assert 'id="strategy-best" value="best"' in page.text and 'id="best-n"' in page.text


async def test_chat_is_paid_from_the_users_balance_and_logged(browser_for, alice, network, settings):
    me = await browser_for(alice)
    events(await me.send("hello", strategy="uids", uids="0"))

    account = await _account(alice)
    assert account.key.credits == settings.CHAT_SIGNUP_CREDITS - 1
    log = await _only_request(alice)
    assert (log.route, log.status, log.credits_charged, log.key_id) == ("chat-ui", 200, 1, account.key_id)
    page = await me.page("/app/")
    assert f'Chat credits: <strong id="balance">{settings.CHAT_SIGNUP_CREDITS - 1}</strong>' in page.text


async def test_the_conversation_so_far_goes_to_the_miner(browser_for, alice, network):
    me = await browser_for(alice)
    first = events(await me.send("My name is Ada.", strategy="uids", uids="2"))
    conversation_id = next(e for e in first if e["event"] == "conversation")["id"]
    events(await me.send("What is my name?", conversation=conversation_id, strategy="uids", uids="2"))

    sent = network.miner(2).seen[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "My name is Ada." and sent[2]["content"] == "What is my name?"


async def test_asking_every_miner_shows_the_other_answers(browser_for, alice, network):
    me = await browser_for(alice)
    got = events(await me.send("hi", strategy="top_n", top_n="3", respond_on_first_success=False))
    html = final_html(got)
    assert "2 other answers" in html
    assert html.count("uid-badge") == 3


async def test_failed_miners_are_named_and_nothing_is_charged(browser_for, alice, network, settings):
    network.set_behaviour([1, 2], mode="error")
    me = await browser_for(alice)
    reply = await me.send("hi", strategy="uids", uids="1,2")

    assert reply.status_code == 502
    body = reply.json()
    assert body["error"].startswith("Every miner asked failed")
    assert "Failed: uid 1, uid 2" in body["html"]
    assert (await _account(alice)).key.credits == settings.CHAT_SIGNUP_CREDITS
    page = await me.page(body["conversation"]["url"])
    assert "Failed: uid 1, uid 2" in page.text  # kept in the conversation


async def test_out_of_credits_is_said_plainly_and_no_miner_is_asked(browser_for, alice, network):
    account = await _account(alice)
    await _set_credits(account.key_id, 0)
    me = await browser_for(alice)
    reply = await me.send("hi", strategy="uids", uids="4")

    assert reply.status_code == 402
    assert reply.json()["error"] == "You are out of credits. Buy more under Buy credits, or ask the operator."
    assert network.miner(4).seen == []


async def test_markdown_answers_show_code_blocks(browser_for, alice, network):
    me = await browser_for(alice)
    got = events(await me.send("Here:\n```python\nprint('hi')\n```", strategy="uids", uids="0"))
    assert "<pre><code class=\"language-python\">print('hi')" in final_html(got)


async def test_markup_in_an_answer_is_shown_as_text(browser_for, alice, network):
    me = await browser_for(alice)
    payload = "<script>alert(1)</script> <img src=x onerror=alert(2)>"
    got = events(await me.send(payload, strategy="uids", uids="0"))
    html = final_html(got)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html and "<img" not in html
    page = await me.page(next(e for e in got if e["event"] == "conversation")["url"])
    assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text


async def test_a_send_without_the_csrf_token_is_refused(browser_for, alice, network):
    me = await browser_for(alice)
    await me.page("/app/")
    reply = await me.client.post("/app/send/", json={"content": "hi", "settings": {}})
    assert reply.status_code == 403
    assert not await _has_messages(alice)


async def test_bad_settings_are_explained(browser_for, alice, network):
    me = await browser_for(alice)
    reply = await me.send("hi", strategy="uids", uids="one")
    assert reply.status_code == 400
    assert reply.json()["error"] == "UIDs must be whole numbers, e.g. 1, 4, 7."


async def _account(user):
    from endpoint.core.db import run_db

    return await run_db(chat_account, user)


async def _set_credits(key_id: int, credits: int) -> None:
    from endpoint.core.db import run_db
    from keys.models import ApiKey

    await run_db(lambda: ApiKey.objects.filter(pk=key_id).update(credits=credits))


async def _only_request(user) -> Request:
    from endpoint.core.db import run_db

    return await run_db(lambda: Request.objects.get(user=user))


async def _has_messages(user) -> bool:
    from endpoint.core.db import run_db

    return await run_db(lambda: Message.objects.filter(conversation__user=user).exists())


__all__ = ["Conversation"]
