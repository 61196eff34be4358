"""Conversations belong to their user: listed, renamed and deleted by them only."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from .events import events

pytestmark = pytest.mark.postgres


async def _conversation(me, text: str = "hello") -> dict:
    got = events(await me.send(text, strategy="uids", uids="0"))
    return next(e for e in got if e["event"] == "conversation")


async def test_rename_and_delete_from_the_page(browser_for, alice, network):
    me = await browser_for(alice)
    conversation = await _conversation(me)
    await me.page(conversation["url"])

    renamed = await me.post_form(f"/app/c/{conversation['id']}/rename/", {"title": "Arithmetic"})
    assert renamed.status_code == 302
    page = await me.page(conversation["url"])
    assert ">Arithmetic</a>" in page.text and '<h1 id="conversation-title">Arithmetic</h1>' in page.text

    confirm = await me.page(f"/app/c/{conversation['id']}/delete/")  # asks first, deletes nothing
    assert "Delete “Arithmetic”?" in confirm.text and "Its 2 messages will be gone for good" in confirm.text
    assert (await me.page(conversation["url"])).status_code == 200
    deleted = await me.post_form(f"/app/c/{conversation['id']}/delete/", {})
    assert deleted.headers["location"] == "/app/"
    page = await me.page("/app/")
    assert "Conversation deleted." in page.text and "Arithmetic" not in page.text
    assert (await me.client.get(conversation["url"])).status_code == 404


async def test_new_chat_button_opens_an_empty_conversation(browser_for, alice, network):
    me = await browser_for(alice)
    await me.page("/app/")
    created = await me.post_form("/app/c/new/", {})
    page = await me.page(created.headers["location"])
    assert '<h1 id="conversation-title">New chat</h1>' in page.text
    assert "Ask the subnet anything" in page.text


async def test_another_users_conversation_is_not_found(browser_for, alice, bob, network):
    mine = await _conversation(await browser_for(alice), "a secret of alice")
    other = await browser_for(bob)
    await other.page("/app/")

    assert (await other.client.get(mine["url"])).status_code == 404
    assert (await other.post_form(f"/app/c/{mine['id']}/rename/", {"title": "x"})).status_code == 404
    assert (await other.post_form(f"/app/c/{mine['id']}/delete/", {})).status_code == 404
    reply = await other.send("hi", conversation=mine["id"], strategy="uids", uids="0")
    assert reply.status_code == 404
    assert "a secret of alice" not in (await other.page("/app/")).text
    assert "a secret of alice" in (await (await browser_for(alice)).page(mine["url"])).text


TITLES = {
    "bold and code": ("**How** do I use `git rebase`?", "How do I use git rebase?"),
    "a heading and a link": ("## Plans\n\nRead [the docs](https://example.com) first", "Plans Read the docs first"),
    "a code block": ("```python\nprint('hi')\n```", "print('hi')"),
    "only markup": ("***", "New chat"),
    "long": ("_word_ " * 40, "word " * 11 + "word…"),
}


@pytest.mark.parametrize(("text", "title"), TITLES.values(), ids=TITLES.keys())
async def test_titles_are_the_words_of_the_first_message_without_markdown(browser_for, alice, network, text, title):
    me = await browser_for(alice)
    conversation = await _conversation(me, text)
    assert conversation["title"] == title
    assert len(conversation["title"]) <= 60
    page = await me.page(conversation["url"])
    assert f'<h1 id="conversation-title">{escape(title)}</h1>' in page.text
