"""In Chromium, the controls on a conversation: Stop an answer as it
streams, Regenerate it, Copy a message, Edit and resend one, Retry a failed
answer (kept with its error across a reload), the best N miners from the
settings; and every control usable at phone width."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from chat.models import Message
from chat.services import chat_account
from keys.models import ApiKey
from logs.models import Request
from tests.chat.browser_session import fast_passwords, screenshot, send, sign_in, verified_user  # noqa: F401 - fast_passwords is a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]

WORDS = "one two three four five six seven eight nine ten"
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def open_chat(page, live_server_url: str, email: str):
    user = verified_user(email)
    sign_in(page, live_server_url, user)
    page.goto(live_server_url + "/app/")
    return user


def answered(page):
    """The last answer, once it has arrived."""
    answer = page.locator("article.message-assistant").last
    expect(answer).not_to_have_class(re.compile("pending"))
    return answer


def wait_for(query, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while not query.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return query.get()


def test_stop_keeps_the_partial_answer_and_retry_finishes_it(page, live_server_url, network):
    network.set_behaviour(range(8), chunk_delay=0.3)
    open_chat(page, live_server_url, "stopper@example.com")
    send(page, WORDS)
    expect(page.locator(".message-assistant.pending .streaming")).to_contain_text("three")
    page.get_by_role("button", name="Stop").click()

    answer = answered(page)
    expect(answer.locator(".answer-stopped")).to_have_text("Stopped before the end of the answer.")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    shown = answer.locator(".bubble").inner_text()
    assert shown.startswith("Miner 0 heard: one") and "ten" not in shown
    screenshot(page, "chat-stopped")

    kept = wait_for(Message.objects.filter(role="assistant", stopped=True))
    assert kept.content.startswith(shown)
    page.reload()  # kept as stopped, with what was said
    expect(answer.locator(".answer-stopped")).to_be_visible()
    expect(answer.locator(".bubble")).to_contain_text("Miner 0 heard: one")

    network.set_behaviour(range(8), chunk_delay=0)
    answer.get_by_role("button", name="Retry").click()
    expect(answered(page).locator(".bubble")).to_have_text(f"Miner 0 heard: {WORDS}")
    expect(page.locator(".answer-stopped")).to_have_count(0)
    expect(page.locator("article.message")).to_have_count(2)


def test_stop_before_any_answer_puts_the_message_back_to_send_again(page, live_server_url, network):
    network.set_behaviour(range(8), latency=3)
    open_chat(page, live_server_url, "hasty@example.com")
    send(page, "never mind")
    expect(page.get_by_text("Asking the miners…")).to_be_visible()
    wait_for(Message.objects.filter(content="never mind"))  # the server has it, and is asking
    page.get_by_role("button", name="Stop").click()

    expect(page.get_by_label("Message")).to_have_value("never mind")
    expect(page.locator("article.message")).to_have_count(0)
    wait_for(Request.objects.filter(route="chat-ui", status=499))
    assert not Message.objects.exists()  # taken back
    network.set_behaviour(range(8), latency=0)
    page.get_by_label("Message").press("Enter")
    expect(answered(page).locator(".bubble")).to_have_text("Miner 0 heard: never mind")


def test_regenerate_asks_the_same_history_again(page, live_server_url, network):
    open_chat(page, live_server_url, "again@example.com")
    send(page, "hello")
    expect(answered(page).locator(".bubble")).to_have_text("Miner 0 heard: hello")

    page.get_by_role("button", name="Regenerate").click()
    expect(answered(page).locator(".bubble")).to_have_text("Miner 0 heard: hello")
    seen = network.miner(0).seen
    assert len(seen) == 2 and seen[0].body["messages"] == seen[1].body["messages"]
    expect(page.locator("article.message")).to_have_count(2)  # replaced, not added
    page.reload()
    expect(page.locator("article.message")).to_have_count(2)


def test_copy_puts_a_messages_text_on_the_clipboard(page, live_server_url, network):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server_url)
    open_chat(page, live_server_url, "copier@example.com")
    send(page, "Say **bold** and `code`")
    answer = answered(page)

    answer.get_by_role("button", name="Copy").click()
    expect(answer.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == "Miner 0 heard: Say **bold** and `code`"
    page.locator("article.message-user").get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == "Say **bold** and `code`"
    expect(answer.get_by_role("button", name="Copy")).to_be_visible()  # the confirmation goes after a moment


def test_edit_and_resend_replaces_the_later_messages(page, live_server_url, network):
    open_chat(page, live_server_url, "editor@example.com")
    send(page, "first")
    expect(answered(page).locator(".bubble")).to_have_text("Miner 0 heard: first")
    send(page, "second")
    expect(answered(page).locator(".bubble")).to_have_text("Miner 0 heard: second")

    page.locator("article.message-user").first.get_by_role("button", name="Edit").click()
    page.get_by_label("Edit your message").fill("changed")
    page.get_by_role("button", name="Send edited").click()

    expect(answered(page).locator(".bubble")).to_have_text("Miner 0 heard: changed")
    expect(page.locator("article.message .bubble")).to_have_text(["changed", "Miner 0 heard: changed"])
    page.reload()
    expect(page.locator("article.message .bubble")).to_have_text(["changed", "Miner 0 heard: changed"])
    expect(page.locator("#conversation-title")).to_have_text("changed")


def test_a_failed_answer_is_kept_with_its_error_and_retried(page, live_server_url, network):
    network.set_behaviour(range(8), mode="error")
    open_chat(page, live_server_url, "unlucky@example.com")
    send(page, "anyone there?")
    expect(page.get_by_role("alert")).to_contain_text("Every miner asked failed to answer.")

    page.reload()
    expect(page.locator("article.message-user .bubble")).to_have_text("anyone there?")
    expect(page.get_by_role("alert")).to_contain_text("Every miner asked failed to answer.")
    screenshot(page, "chat-failed-kept")
    network.set_behaviour(range(8), mode="ok")
    page.get_by_role("button", name="Retry").click()
    expect(answered(page).locator(".bubble")).to_have_text("Miner 0 heard: anyone there?")
    expect(page.get_by_role("alert")).to_have_count(0)


def test_out_of_credits_is_kept_beside_the_message(page, live_server_url, network):
    user = verified_user("broke-again@example.com")
    ApiKey.objects.filter(pk=chat_account(user).key_id).update(credits=0)
    sign_in(page, live_server_url, user)
    page.goto(live_server_url + "/app/")
    send(page, "hello?")
    out = "You are out of credits. Buy more under Buy credits, or ask the operator."
    expect(page.get_by_role("alert")).to_have_text(out)
    page.reload()
    expect(page.get_by_role("alert")).to_have_text(out)

    ApiKey.objects.filter(pk=chat_account(user).key_id).update(credits=5)
    page.get_by_role("button", name="Retry").click()
    expect(answered(page).locator(".bubble")).to_have_text("Miner 0 heard: hello?")


def test_the_best_n_miners_from_the_settings(page, live_server_url, network):
    open_chat(page, live_server_url, "best@example.com")
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("How many of the best miners").fill("2")
    expect(page.get_by_label("The best miners lately (success and speed)")).to_be_checked()
    send(page, "who is best?")
    expect(answered(page).locator(".bubble")).to_contain_text("heard: who is best?")
    assert Request.objects.get(route="chat-ui").strategy == "best:2"
    page.reload()  # the settings are kept in the browser
    expect(page.get_by_label("How many of the best miners")).to_have_value("2")


def test_every_control_fits_a_phone(page, live_server_url, network):
    page.set_viewport_size({"width": 390, "height": 844})
    network.set_behaviour(range(8), chunk_delay=0.3)
    open_chat(page, live_server_url, "thumbs@example.com")
    send(page, "x" * 300 + "\n```\n" + "y" * 300 + "\n```\n" + WORDS)
    expect(page.get_by_role("button", name="Stop")).to_be_in_viewport()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)

    answer = answered(page)
    expect(answer.locator("pre")).to_be_visible()  # the code block, scrolling inside itself
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    for name in ("Copy", "Regenerate"):
        expect(answer.get_by_role("button", name=name)).to_be_in_viewport()
    mine = page.locator("article.message-user")
    mine.get_by_role("button", name="Edit").click()
    expect(page.get_by_role("button", name="Send edited")).to_be_in_viewport()
    expect(mine.get_by_role("button", name="Edit", exact=True)).to_be_hidden()  # the editor stands in for the message
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    screenshot(page, "chat-phone-controls")
    page.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Settings").click()
    expect(page.get_by_label("How many of the best miners")).to_be_in_viewport()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
