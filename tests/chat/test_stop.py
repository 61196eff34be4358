"""Stop: the page aborts its request while the answer streams. Over a real
socket, so the server sees the client go: the part said is kept and marked
stopped, the call is logged once as 499 and charged once."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from django.conf import settings
from django.db.models import Q

from chat.models import Conversation, Message
from chat.services import chat_account
from keys.models import CreditEntry
from logs.models import Request

from .conftest import session_cookie

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORDS = "one two three four five six seven eight nine ten"


def wait_for(query, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while not query.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return query.get()


@pytest.fixture
def signed_in(live_server_url, alice):
    """A client with Alice's session, and the headers the page's script sends."""
    with httpx.Client(base_url=live_server_url, timeout=10) as page:
        page.cookies.set(settings.SESSION_COOKIE_NAME, session_cookie(alice))
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.get("/app/").text).group(1)
        yield page, {"X-CSRFToken": csrf, "Referer": live_server_url + "/app/"}


def test_stopping_keeps_what_was_said_and_charges_once(signed_in, alice, network):
    network.set_behaviour(3, chunk_delay=0.3)
    page, headers = signed_in
    body = {"content": WORDS, "settings": {"strategy": "uids", "uids": "3"}}
    shown = ""
    with page.stream("POST", "/app/send/", json=body, headers=headers) as reply:
        for line in reply.iter_lines():
            event = json.loads(line)
            if event["event"] == "delta":
                shown += event["text"]
            if "three" in shown:
                break  # Stop

    answer = wait_for(Message.objects.filter(role="assistant", stopped=True))
    assert shown.startswith("Miner 3 heard:") and answer.content.startswith(shown)
    assert "ten" not in answer.content and answer.error == ""
    log = wait_for(Request.objects.filter(route="chat-ui").exclude(api_error=""))
    assert (log.status, log.api_error, log.credits_charged) == (499, "ClientClosedRequest", 1)
    assert answer.request_id == log.id
    moved = CreditEntry.objects.filter(Q(request_id=log.id) | Q(ends=log.id)).order_by("pk")
    assert [(e.kind, e.amount) for e in moved] == [("hold", -1), ("settle", 0)]  # held once, kept once
    assert chat_account(alice).key.credits == settings.CHAT_SIGNUP_CREDITS - 1

    conversation = page.get(f"/app/c/{answer.conversation_id}/").text
    assert "Stopped before the end of the answer." in conversation and ">Retry</button>" in conversation


def test_a_new_message_stopped_before_any_answer_is_taken_back_uncharged(signed_in, alice, network):
    network.set_behaviour(3, latency=3)
    page, headers = signed_in
    body = {"content": WORDS, "settings": {"strategy": "uids", "uids": "3"}}
    with pytest.raises(httpx.ReadTimeout):  # the page gives up (Stop) while the miners are asked
        page.post("/app/send/", json=body, headers=headers, timeout=httpx.Timeout(10, read=0.5))

    log = wait_for(Request.objects.filter(route="chat-ui").exclude(api_error=""))
    assert (log.status, log.api_error, log.credits_charged) == (499, "ClientClosedRequest", 0)
    assert chat_account(alice).key.credits == settings.CHAT_SIGNUP_CREDITS
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_an_edit_stopped_before_any_answer_stands_with_a_stopped_answer(signed_in, alice, network):
    page, headers = signed_in
    body = {"content": "first", "settings": {"strategy": "uids", "uids": "3"}}
    assert page.post("/app/send/", json=body, headers=headers).status_code == 200
    prompt = Message.objects.get(role="user")
    network.set_behaviour(3, latency=3)
    edit = f"/app/c/{prompt.conversation_id}/m/{prompt.pk}/edit/"
    with pytest.raises(httpx.ReadTimeout):
        page.post(edit, json={**body, "content": "changed"}, headers=headers, timeout=httpx.Timeout(10, read=0.5))

    wait_for(Message.objects.filter(role="assistant", stopped=True))
    kept = Message.objects.filter(conversation_id=prompt.conversation_id)
    assert [(m.role, m.content, m.stopped) for m in kept] == [("user", "changed", False), ("assistant", "", True)]


def test_stopping_an_image_before_it_is_drawn_takes_the_message_back_uncharged(signed_in, alice, media):
    media["images"].set_behaviour([0, 1], latency=3)
    page, headers = signed_in
    body = {"content": "a red fox", "settings": {"subnet": "images"}}
    with pytest.raises(httpx.ReadTimeout):  # Stop, while the image miners draw
        page.post("/app/send/", json=body, headers=headers, timeout=httpx.Timeout(10, read=0.5))

    log = wait_for(Request.objects.filter(route="chat-ui").exclude(api_error=""))
    assert (log.status, log.api_error, log.credits_charged) == (499, "ClientClosedRequest", 0)
    assert chat_account(alice).key.credits == settings.CHAT_SIGNUP_CREDITS
    assert not Conversation.objects.exists() and not Message.objects.exists()
