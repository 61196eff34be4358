"""In Chromium: markup from a miner stays text (no script runs), the page
works at phone width, and an empty balance is said plainly."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat.services import chat_account
from keys.models import ApiKey
from tests.chat.browser_session import fast_passwords, screenshot, send, sign_in, verified_user  # noqa: F401 - fast_passwords is a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]

XSS = "<script>alert(1)</script> <img src=x onerror=alert(2)>"


def test_markup_in_an_answer_is_shown_as_text_and_never_runs(page, live_server_url, network):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, live_server_url, verified_user("mallory@example.com"))
    page.goto(live_server_url + "/app/")

    send(page, XSS)
    answer = page.locator("article.message-assistant").last
    expect(answer.locator(".bubble")).to_have_text(f"Miner 0 heard: {XSS}")
    expect(page.locator("article.message-user .bubble")).to_have_text(XSS)
    page.reload()  # the stored conversation, rendered by the server
    expect(page.locator("article.message-assistant .bubble")).to_have_text(f"Miner 0 heard: {XSS}")
    assert page.locator(".messages img, .messages script").count() == 0
    page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert dialogs == []


def test_phone_width_has_no_sideways_scroll_and_a_visible_send_button(page, live_server_url, network):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server_url, verified_user("phone@example.com"))
    page.goto(live_server_url + "/app/")
    send(page, "a-very-long-word-" * 12 + "\nand a second line")
    expect(page.locator("article.message-assistant .uid-badge")).to_be_visible()

    expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Shift+Enter is a newline, not a send.
    page.get_by_label("Message").press("Shift+Enter")
    expect(page.locator("article.message-user")).to_have_count(1)
    screenshot(page, "chat-phone")
    # The sidebar opens from its button and closes again.
    page.get_by_role("button", name="Conversations").click()
    expect(page.get_by_role("button", name="New chat")).to_be_in_viewport()
    page.get_by_role("button", name="Close").click()
    expect(page.get_by_role("button", name="New chat")).not_to_be_in_viewport()


def test_out_of_credits_is_said_in_the_page(page, live_server_url, network):
    user = verified_user("broke@example.com")
    ApiKey.objects.filter(pk=chat_account(user).key_id).update(credits=0)
    sign_in(page, live_server_url, user)
    page.goto(live_server_url + "/app/")

    send(page, "hello?")
    expect(page.get_by_role("alert")).to_have_text(
        "You are out of credits. Buy more under Buy credits, or ask the operator."
    )
    assert network.miner(0).seen == []
