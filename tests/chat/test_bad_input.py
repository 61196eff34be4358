"""Hostile input on every page and endpoint of the chat app: a clear 4xx
that says what is wrong, and nothing changed (no message stored, no
conversation renamed, no key made, no credit moved, no request logged).

One rule for text (chat.services): a NUL character is refused, never
stripped, as is text over its field's limit."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from chat.models import Conversation, Message
from chat.services import chat_account, new_conversation
from endpoint.core.db import run_db
from keys.models import ApiKey
from logs.models import Request

pytestmark = pytest.mark.postgres

UIDS_USAGE = "UIDs must be whole numbers, e.g. 1, 4, 7."
MALFORMED = "The page sent a malformed message."
# Forms and query strings of every page: refused by endpoint.middleware before any view.
NUL_IN_FORM = "NUL characters (\\x00) are not accepted."
NUL_IN_BODY = "Request body contains a NUL character"  # the send endpoint refuses a NUL anywhere in its body
TOP_N = "Top N must be a whole number from 1 to 1024."
IN_PARALLEL = "In parallel must be a whole number from 1 to 1024."


def state(user) -> dict:
    """Everything a refused input must leave as it was."""
    return {
        "messages": Message.objects.filter(conversation__user=user).count(),
        "titles": sorted(Conversation.objects.of(user).values_list("title", flat=True)),
        "keys": sorted(ApiKey.objects.filter(owner=user).values_list("name", "credits")),
        "requests": Request.objects.count(),
    }


@pytest.fixture
def alice_with_a_conversation(alice):
    chat_account(alice)  # the balance exists before, so "no credit moved" means something
    new_conversation(alice, title="Kept as it was")
    return alice


# --- POST /app/send/ ---------------------------------------------------------------

# (JSON body, or raw bytes) -> (status, the error the page shows)
SEND = {
    "settings not an object": ({"content": "hi", "settings": "x"}, 400, "The settings must be an object"),
    "settings a list": ({"content": "hi", "settings": [1, 2]}, 400, "The settings must be an object"),
    "uids text": ({"content": "hi", "settings": {"uids": "x"}}, 400, UIDS_USAGE),
    "uids infinite": (b'{"content": "hi", "settings": {"uids": [1e309]}}', 400, MALFORMED),
    "uids a huge float": ({"content": "hi", "settings": {"uids": [1e308]}}, 400, UIDS_USAGE),
    "uids negative": ({"content": "hi", "settings": {"strategy": "uids", "uids": [-1]}}, 400, UIDS_USAGE),
    "uids above 16 bits": ({"content": "hi", "settings": {"uids": [70000]}}, 400, UIDS_USAGE),
    "uids nested": ({"content": "hi", "settings": {"uids": [[1], {"a": [2]}]}}, 400, UIDS_USAGE),
    "uids an object": ({"content": "hi", "settings": {"uids": {"0": 1}}}, 400, UIDS_USAGE),
    "uids a huge list": ({"content": "hi", "settings": {"uids": list(range(5000))}}, 400, "at most 1024 UIDs"),
    "uids a huge string": ({"content": "hi", "settings": {"uids": "1," * 50_000}}, 400, "at most 1024 UIDs"),
    "uids with NUL": ({"content": "hi", "settings": {"uids": "1\x00"}}, 400, NUL_IN_BODY),
    "uids chosen but empty": ({"content": "hi", "settings": {"strategy": "uids", "uids": ""}}, 400, "Pick at least"),
    "top_n negative": ({"content": "hi", "settings": {"top_n": -1}}, 400, TOP_N),
    "top_n true": ({"content": "hi", "settings": {"top_n": True}}, 400, TOP_N),
    "top_n huge": ({"content": "hi", "settings": {"strategy": "top_n", "top_n": 10**30}}, 400, TOP_N),
    "top_n in exponent": ({"content": "hi", "settings": {"strategy": "best", "top_n": "1e3"}}, 400, TOP_N),
    "top_n nested": ({"content": "hi", "settings": {"top_n": {"a": [[[]]]}}}, 400, TOP_N),
    "top_n chosen but blank": ({"content": "hi", "settings": {"strategy": "top_n", "top_n": ""}}, 400, TOP_N),
    "strategy unknown": ({"content": "hi", "settings": {"strategy": "all"}}, 400, "Strategy must be"),
    "strategy nested": ({"content": "hi", "settings": {"strategy": {"x": [1]}}}, 400, "Strategy must be"),
    "in_parallel negative": ({"content": "hi", "settings": {"in_parallel": -3}}, 400, IN_PARALLEL),
    "in_parallel huge": ({"content": "hi", "settings": {"in_parallel": 10**30}}, 400, IN_PARALLEL),
    "in_parallel a float": ({"content": "hi", "settings": {"in_parallel": 2.5}}, 400, IN_PARALLEL),
    "first success text": ({"content": "hi", "settings": {"respond_on_first_success": "no"}}, 400, "true or false"),
    "content with NUL": ({"content": "a\x00b"}, 400, NUL_IN_BODY),
    "content only NUL": ({"content": "\x00"}, 400, NUL_IN_BODY),
    "content too long": ({"content": "x" * 32_001}, 400, "A message is limited to 32000 characters."),
    "content a list": ({"content": ["hi"]}, 400, "A message must be text."),
    "content an object": ({"content": {"text": "hi"}}, 400, "A message must be text."),
    "content empty": ({"content": "   "}, 400, "Type a message first."),
    "content a lone surrogate": (b'{"content": "\\ud800"}', 400, MALFORMED),
    "conversation a float": ({"content": "hi", "conversation": 1e308}, 400, MALFORMED),
    "conversation huge": ({"content": "hi", "conversation": 10**30}, 400, MALFORMED),
    "conversation text": ({"content": "hi", "conversation": "one"}, 400, MALFORMED),
    "conversation a list": ({"content": "hi", "conversation": [1]}, 400, MALFORMED),
    "conversation true": ({"content": "hi", "conversation": True}, 400, MALFORMED),
    "conversation unknown": ({"content": "hi", "conversation": 987_654_321}, 404, "No such conversation."),
    "conversation with NUL": ({"content": "hi", "conversation": "1\x00"}, 400, NUL_IN_BODY),
    "body not JSON": (b"\xff\xfe{", 400, MALFORMED),
    "body a list": (b"[1, 2]", 400, MALFORMED),
    "body a string": (b'"hi"', 400, MALFORMED),
}


@pytest.mark.parametrize(("body", "status", "error"), SEND.values(), ids=SEND.keys())
async def test_send_refuses_hostile_input(browser_for, alice_with_a_conversation, body, status, error):
    me = await browser_for(alice_with_a_conversation)
    await me.page("/app/")
    before = await run_db(state, alice_with_a_conversation)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"X-CSRFToken": me.csrf, "Referer": "http://testserver/app/", "Content-Type": "application/json"}

    reply = await me.client.post("/app/send/", content=raw, headers=headers)

    assert reply.status_code == status
    assert error in reply.json()["error"]
    assert await run_db(state, alice_with_a_conversation) == before


async def test_a_nul_in_a_later_message_keeps_the_conversation_as_it_was(browser_for, alice_with_a_conversation):
    me = await browser_for(alice_with_a_conversation)
    await me.page("/app/")
    conversation = await run_db(lambda: Conversation.objects.get(user=alice_with_a_conversation))
    before = await run_db(state, alice_with_a_conversation)
    reply = await me.send("hello\x00", conversation=conversation.pk)
    assert reply.status_code == 400
    assert await run_db(state, alice_with_a_conversation) == before


# --- POST /app/c/<id>/rename/ ------------------------------------------------------------

RENAME = {
    "NUL": ("Plans\x00", NUL_IN_FORM),
    "only NUL": ("\x00", NUL_IN_FORM),
    "too long": ("t" * 201, "A conversation name is limited to 200 characters."),
    "huge": ("t" * 500_000, "A conversation name is limited to 200 characters."),
    "blank": ("   ", "A conversation needs a name."),
}


@pytest.mark.parametrize(("title", "error"), RENAME.values(), ids=RENAME.keys())
async def test_rename_refuses_hostile_titles(browser_for, alice_with_a_conversation, title, error):
    me = await browser_for(alice_with_a_conversation)
    conversation = await run_db(lambda: Conversation.objects.get(user=alice_with_a_conversation))
    await me.page(f"/app/c/{conversation.pk}/")
    before = await run_db(state, alice_with_a_conversation)

    reply = await me.post_form(f"/app/c/{conversation.pk}/rename/", {"title": title})

    assert reply.status_code == 400
    assert _escaped(error) in reply.text  # the page itself says why
    assert await run_db(state, alice_with_a_conversation) == before


# --- POST /app/keys/ ------------------------------------------------------------------------

KEYS_PAGE = {
    "name with NUL": ({"name": "my\x00key", "credits": "5"}, NUL_IN_FORM),
    "name too long": ({"name": "k" * 201, "credits": "5"}, "A key name is limited to 200 characters."),
    "name huge": ({"name": "k" * 500_000, "credits": "5"}, "A key name is limited to 200 characters."),
    "name blank": ({"name": " ", "credits": "5"}, "Give the key a name."),
    "credits text": ({"name": "k", "credits": "lots"}, "Credits must be a whole number from 1 to"),
    "credits negative": ({"name": "k", "credits": "-1"}, "Credits must be a whole number from 1 to"),
    "credits in exponent": ({"name": "k", "credits": "1e3"}, "Credits must be a whole number from 1 to"),
    "credits huge": ({"name": "k", "credits": "9" * 30}, "Credits must be a whole number from 1 to"),
    "credits with NUL": ({"name": "k", "credits": "5\x00"}, NUL_IN_FORM),
    "credits zero": ({"name": "k", "credits": "0"}, "A new key needs at least 1 credit"),
    "credits left out": ({"name": "k", "credits": ""}, "A new key needs at least 1 credit"),
}


@pytest.mark.parametrize(("form", "error"), KEYS_PAGE.values(), ids=KEYS_PAGE.keys())
async def test_keys_page_refuses_hostile_input(browser_for, alice_with_a_conversation, form, error):
    me = await browser_for(alice_with_a_conversation)
    await me.page("/app/keys/")
    before = await run_db(state, alice_with_a_conversation)

    reply = await me.post_form("/app/keys/", form)

    assert reply.status_code == 400
    assert _escaped(error) in reply.text
    assert "it is shown this once" not in reply.text
    assert await run_db(state, alice_with_a_conversation) == before


# --- POST /api/keys/ --------------------------------------------------------------------------

API_KEYS = {
    "name with NUL": {"name": "my\x00key", "credits": 5},
    "name too long": {"name": "k" * 201, "credits": 5},
    "name an object": {"name": {"a": 1}, "credits": 5},
    "credits negative": {"name": "k", "credits": -1},
    "credits huge": {"name": "k", "credits": 10**30},
    "credits a float": {"name": "k", "credits": 1e308},
    "credits true": {"name": "k", "credits": True},
    "credits zero": {"name": "k", "credits": 0},
    "credits left out": {"name": "k"},
}


@pytest.mark.parametrize("body", API_KEYS.values(), ids=API_KEYS.keys())
def test_api_keys_refuses_hostile_input(alice_with_a_conversation, body):
    client = APIClient()
    client.force_login(alice_with_a_conversation)
    before = state(alice_with_a_conversation)

    reply = client.post("/api/keys/", body, format="json")

    assert reply.status_code == 400
    assert reply.json()["detail"]
    assert state(alice_with_a_conversation) == before


# --- the rest: ids out of range, searches ----------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/app/c/99999999999999999999999/", "/app/c/9223372036854775808/"],
    ids=["huge", "just past bigint"],
)
def test_pages_of_ids_out_of_range_are_not_found(alice, path):
    from django.test import Client

    client = Client()
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(path).status_code == 404
    for action in ("rename/", "delete/"):
        assert client.post(path + action, {"title": "x"}).status_code == 404
    assert client.post("/app/keys/99999999999999999999999/revoke/").status_code == 404


@pytest.mark.parametrize(
    ("query", "status"), [("\x00", 400), ("a\x00b", 400), ("x" * 5000, 200)], ids=["NUL", "NUL inside", "long"]
)
def test_neuron_search_with_odd_text_answers(alice, query, status):
    from django.test import Client

    client = Client()
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    reply = client.get("/app/neurons/", {"q": query})
    assert reply.status_code == status
    if status == 200:
        assert reply.json() == {"neurons": []}


def _escaped(text: str) -> str:
    """``text`` as the page's HTML writes it."""
    from django.utils.html import escape

    return escape(text)
