"""A new user, in Chromium: signs up, confirms the email from the outbox,
signs in, chats (the answer streams in with its uid), finds the
conversation in the sidebar, renames and deletes it; picks a miner through
the tag search and gets its answer."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from endpoint.core.models import Neuron
from tests.chat.browser_session import PASSWORD, fast_passwords, screenshot, send, sign_in, verified_user  # noqa: F401 - fast_passwords is a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]


def test_sign_up_verify_chat_rename_delete(page, live_server_url, network):
    page.goto(live_server_url + "/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_role("link", name="Sign up").first.click()
    page.get_by_label("Email:").fill("newcomer@example.com")
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again):").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()

    link = re.search(r"https?://\S+/accounts/confirm-email/\S+", mail.outbox[-1].body).group(0)
    page.goto(link)  # confirming signs the user in (ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION)
    page.get_by_role("button", name="Sign out").click()
    page.goto(live_server_url + "/accounts/login/")
    page.get_by_label("Email:").fill("newcomer@example.com")
    page.get_by_label("Password:").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(live_server_url + "/app/")

    # The answer trickles in word by word: the uid shows while it still streams.
    network.set_behaviour(range(8), chunk_delay=0.15)
    send(page, "Tell me about the subnet")
    pending = page.locator(".message-assistant.pending")
    expect(pending.locator(".uid-badge")).to_have_text(re.compile(r"uid \d"))
    expect(pending.locator(".streaming")).to_contain_text("Miner")
    answer = page.locator("article.message-assistant").last
    expect(answer).not_to_have_class(re.compile("pending"))
    expect(answer.locator(".bubble")).to_have_text(re.compile(r"Miner \d heard: Tell me about the subnet"))
    expect(answer.locator(".uid-badge")).to_be_visible()
    expect(page.locator("#conversation-list a")).to_have_text(["Tell me about the subnet"])
    screenshot(page, "chat-answer")

    page.reload()  # kept: the conversation page shows it again
    expect(page.locator("article.message-assistant .uid-badge")).to_be_visible()
    page.get_by_text("Rename or delete").click()
    page.get_by_label("New name").fill("Subnet questions")
    page.get_by_role("button", name="Rename").click()
    expect(page.locator("#conversation-list a")).to_have_text(["Subnet questions"])
    page.get_by_text("Rename or delete").click()
    page.get_by_role("link", name="Delete conversation").click()
    expect(page.get_by_role("heading", name="Delete “Subnet questions”?")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()  # nothing deleted: back to the conversation
    expect(page.locator("#conversation-list a")).to_have_text(["Subnet questions"])
    page.get_by_text("Rename or delete").click()
    page.get_by_role("link", name="Delete conversation").click()
    page.get_by_role("button", name="Delete conversation").click()
    expect(page.get_by_text("Conversation deleted.")).to_be_visible()
    expect(page.locator("#conversation-list a")).to_have_count(0)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
    expect(page).to_have_url(re.compile(r"/accounts/email/$"))  # email, password and sign-in settings


def test_pick_a_miner_by_tag_and_get_its_answer(page, live_server_url, network):
    Neuron.objects.filter(uid=6).update(description="Answers about Rust", tags=["rust", "code"])
    sign_in(page, live_server_url, verified_user("picker@example.com"))
    page.goto(live_server_url + "/app/")
    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Search miners by description or tag").fill("rust")
    result = page.locator("#neuron-results li")
    expect(result).to_have_count(1)
    expect(result).to_contain_text("Answers about Rust")
    page.get_by_role("button", name="Use uid 6").click()
    expect(page.get_by_label("These UIDs")).to_be_checked()

    send(page, "Which miner are you?")
    answer = page.locator("article.message-assistant").last
    expect(answer.locator(".bubble")).to_have_text("Miner 6 heard: Which miner are you?")
    expect(answer.locator(".uid-badge")).to_have_text("uid 6")
    screenshot(page, "chat-picked-uid")
