"""Going back in a conversation: a user's message edited and resent, an
answer asked for again (Regenerate, Retry). What came after is replaced, in
the database too; a refused request changes nothing."""

from __future__ import annotations

import pytest

from chat.models import Conversation, Message
from chat.services import chat_account
from endpoint.core.db import run_db
from logs.models import Request

from .events import events, final_html

pytestmark = pytest.mark.postgres


def said(conversation_id: int) -> list[tuple[str, str, str]]:
    rows = Message.objects.filter(conversation_id=conversation_id)
    return [(m.role, m.content, m.error) for m in rows]


async def two_exchanges(me) -> tuple[int, list[int]]:
    """A conversation of "first" and "second", each answered by uid 0; its id and its user messages' ids."""
    got = events(await me.send("first", strategy="uids", uids="0"))
    conversation = next(e for e in got if e["event"] == "conversation")["id"]
    events(await me.send("second", conversation=conversation, strategy="uids", uids="0"))
    ids = await run_db(lambda: list(Message.objects.filter(role="user").order_by("pk").values_list("pk", flat=True)))
    return conversation, ids


async def test_an_edited_message_replaces_what_came_after_it(browser_for, alice, network):
    me = await browser_for(alice)
    conversation, (first, _second) = await two_exchanges(me)

    got = events(await me.post_json(f"/app/c/{conversation}/m/{first}/edit/", {"content": "changed", "settings": {}}))

    assert "Miner 0 heard: changed" in final_html(got)
    prompt = next(e for e in got if e["event"] == "prompt")
    assert f'data-id="{first}"' in prompt["html"] and "changed" in prompt["html"]
    assert await run_db(said, conversation) == [("user", "changed", ""), ("assistant", "Miner 0 heard: changed", "")]
    assert network.miner(0).seen[-1].body["messages"] == [{"role": "user", "content": "changed"}]
    # The conversation was named by that message: it follows the edit.
    assert (await run_db(Conversation.objects.get, pk=conversation)).title == "changed"
    page = await me.page(f"/app/c/{conversation}/")
    assert "Miner 0 heard: changed" in page.text and "second" not in page.text


async def test_only_an_edit_of_the_message_that_named_it_renames_it(browser_for, alice, network):
    me = await browser_for(alice)
    got = events(await me.send("same", strategy="uids", uids="0"))
    conversation = next(e for e in got if e["event"] == "conversation")["id"]
    events(await me.send("same", conversation=conversation, strategy="uids", uids="0"))
    first, second = await run_db(lambda: list(Message.objects.filter(role="user").values_list("pk", flat=True)))

    events(await me.post_json(f"/app/c/{conversation}/m/{second}/edit/", {"content": "other"}))
    assert (await run_db(Conversation.objects.get, pk=conversation)).title == "same"
    await me.page(f"/app/c/{conversation}/")
    await me.post_form(f"/app/c/{conversation}/rename/", {"title": "Mine"})
    events(await me.post_json(f"/app/c/{conversation}/m/{first}/edit/", {"content": "another"}))
    assert (await run_db(Conversation.objects.get, pk=conversation)).title == "Mine"  # the user's name stays


async def test_regenerate_asks_again_with_the_same_history(browser_for, alice, network, settings):
    me = await browser_for(alice)
    conversation, (_first, second) = await two_exchanges(me)
    before = network.miner(0).seen[-1].body["messages"]

    got = events(
        await me.post_json(
            f"/app/c/{conversation}/m/{second}/regenerate/", {"settings": {"uids": "5", "strategy": "uids"}}
        )
    )

    assert "Miner 5 heard: second" in final_html(got)
    assert network.miner(5).seen[-1].body["messages"] == before
    rows = await run_db(said, conversation)
    assert [r[1] for r in rows] == ["first", "Miner 0 heard: first", "second", "Miner 5 heard: second"]
    account = await run_db(chat_account, alice)
    assert account.key.credits == settings.CHAT_SIGNUP_CREDITS - 3  # each answer paid once


async def test_a_failed_answer_is_kept_with_its_error_then_retried(browser_for, alice, network):
    network.set_behaviour(range(8), mode="error")
    me = await browser_for(alice)
    refused = await me.send("hello?", strategy="uids", uids="2")
    assert refused.status_code == 502
    conversation = refused.json()["conversation"]
    assert "Every miner asked failed" in refused.json()["html"] and ">Retry</button>" in refused.json()["html"]
    page = await me.page(conversation["url"])
    assert "Every miner asked failed to answer." in page.text and ">Retry</button>" in page.text

    network.reset()
    prompt = await run_db(lambda: Message.objects.get(role="user").pk)
    got = events(await me.post_json(f"/app/c/{conversation['id']}/m/{prompt}/regenerate/", {"settings": {}}))

    assert "Miner 0 heard: hello?" in final_html(got)
    assert await run_db(said, conversation["id"]) == [
        ("user", "hello?", ""),
        ("assistant", "Miner 0 heard: hello?", ""),
    ]


async def test_out_of_credits_is_kept_beside_the_message(browser_for, alice, network):
    account = await run_db(chat_account, alice)
    await run_db(lambda: type(account.key).objects.filter(pk=account.key_id).update(credits=0))
    me = await browser_for(alice)
    refused = await me.send("anyone?", strategy="uids", uids="1")
    assert refused.status_code == 402
    page = await me.page(refused.json()["conversation"]["url"])
    assert "anyone?" in page.text and "You are out of credits." in page.text
    assert network.miner(1).seen == []


# --- refused: nothing changes ---------------------------------------------------------------


def state() -> dict:
    return {
        "messages": list(Message.objects.order_by("pk").values_list("role", "content", "error")),
        "titles": sorted(Conversation.objects.values_list("title", flat=True)),
        "requests": Request.objects.count(),
    }


@pytest.fixture
async def alices_conversation(browser_for, alice, network):
    """Alice's conversation of two exchanges: (her browser, its id, her messages' ids, its answers' ids)."""
    me = await browser_for(alice)
    conversation, prompts = await two_exchanges(me)
    answers = await run_db(lambda: list(Message.objects.filter(role="assistant").values_list("pk", flat=True)))
    return me, conversation, prompts, answers


EDIT = {"content": "changed", "settings": {}}


@pytest.mark.parametrize("action", ["edit", "regenerate"])
async def test_another_users_conversation_is_not_found(browser_for, bob, alices_conversation, action):
    _me, conversation, prompts, _answers = alices_conversation
    before = await run_db(state)
    other = await browser_for(bob)
    reply = await other.post_json(f"/app/c/{conversation}/m/{prompts[0]}/{action}/", EDIT)
    assert reply.status_code == 404
    assert reply.json()["error"] == "No such conversation."
    assert await run_db(state) == before


BAD = {
    "an answer is no message to edit": ("edit", "answer", EDIT, 404, "No such message of yours"),
    "an answer is no message to answer": ("regenerate", "answer", {}, 404, "No such message of yours"),
    "a message of no conversation": ("edit", 987_654_321, EDIT, 404, "No such message of yours"),
    "an id past bigint": ("regenerate", 2**63, {}, 404, "No such message of yours"),
    "an empty edit": ("edit", "prompt", {"content": "  "}, 400, "Type a message first."),
    "an edit that is no text": ("edit", "prompt", {"content": ["x"]}, 400, "A message must be text."),
    "an over-long edit": ("edit", "prompt", {"content": "x" * 32_001}, 400, "limited to 32000 characters"),
    "an edit with NUL": ("edit", "prompt", {"content": "a\x00b"}, 400, "NUL character"),
    "bad settings": ("regenerate", "prompt", {"settings": {"strategy": "best", "best_n": "0"}}, 400, "Best N must be"),
    "a body that is no object": ("regenerate", "prompt", [1], 400, "malformed"),
}


@pytest.mark.parametrize(("action", "which", "body", "status", "error"), BAD.values(), ids=BAD.keys())
async def test_bad_input_is_explained_and_changes_nothing(alices_conversation, action, which, body, status, error):
    me, conversation, prompts, answers = alices_conversation
    message = {"prompt": prompts[0], "answer": answers[0]}.get(which, which)
    before = await run_db(state)
    reply = await me.post_json(f"/app/c/{conversation}/m/{message}/{action}/", body)
    assert reply.status_code == status
    assert error in reply.json()["error"]
    assert await run_db(state) == before


@pytest.mark.parametrize("action", ["edit", "regenerate"])
async def test_without_csrf_or_signed_out_or_by_get_nothing_changes(api, alices_conversation, action):
    me, conversation, prompts, _answers = alices_conversation
    path = f"/app/c/{conversation}/m/{prompts[0]}/{action}/"
    before = await run_db(state)
    assert (await me.client.post(path, json=EDIT)).status_code == 403  # no CSRF token
    assert (await me.client.get(path)).status_code == 405
    assert (await api.post(path, json=EDIT)).status_code == 403  # signed out: no session, no CSRF cookie
    assert await run_db(state) == before
