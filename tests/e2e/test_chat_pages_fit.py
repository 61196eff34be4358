"""Every chat-side page at a phone's 390 px and at 1280 and 1440 px, in
Chromium: no sideways scrolling, nothing cut off, the page's main controls
within the width, and a screenshot of each."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat.models import Conversation, Message
from chat.services import chat_account
from endpoint.core.models import Neuron
from keys.user_keys import do_create_user_key
from tests.chat.browser_session import assert_fits_width, fast_passwords, sign_in, verified_user  # noqa: F401 - fast_passwords is a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]

WIDTHS = (390, 1280, 1440)
LONG_WORD = "Supercalifragilistic" * 12
LONG_NAME = "a key with a rather long name " + LONG_WORD[:150]
WIDE_TABLE = "| " + " | ".join(f"column {i}" for i in range(12)) + " |\n|" + "---|" * 12 + "\n|" + " 1 |" * 12
CODE_ANSWER = (
    f"Here:\n\n```python\nprint('{'x' * 200}')\n```\n\n{WIDE_TABLE}\n\nand {LONG_WORD} https://example.com/{LONG_WORD}"
)


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def check(request, page, tmp_path):
    """check(name, *controls): the page fits its width, each control is visible
    and within it (scrolled to, up or down), and its screenshot is kept."""
    width = request.param
    page.set_viewport_size({"width": width, "height": 844 if width < 700 else 900})

    def check(name: str, *controls) -> None:
        assert_fits_width(page)
        for control in controls:
            control.scroll_into_view_if_needed()
            expect(control).to_be_in_viewport()
            box = control.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{name}: {control} is off to the side"
        shot = tmp_path / f"{name}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0

    check.width = width
    return check


def test_account_pages_fit(page, live_server_url, check):
    page.goto(live_server_url + "/accounts/login/")
    check("sign-in", page.get_by_label("Email:"), page.get_by_role("button", name="Sign In"))
    page.goto(live_server_url + "/accounts/signup/")
    check("sign-up", page.get_by_label("Password (again):"), page.get_by_role("button", name="Sign Up"))
    page.goto(live_server_url + "/accounts/password/reset/")
    check("password-reset", page.get_by_role("button", name="Reset My Password"))

    sign_in(page, live_server_url, verified_user(f"settings{check.width}@example.com"))
    page.goto(live_server_url + "/accounts/email/")
    check("emails", page.get_by_role("button", name="Add Email"))
    page.goto(live_server_url + "/accounts/password/change/")
    check("password-change", page.get_by_role("button", name="Change Password"))
    page.goto(live_server_url + "/accounts/3rdparty/")
    check("connected-accounts", page.get_by_role("heading", level=1))


def test_conversation_and_miner_search_fit(page, live_server_url, network, check):
    user = verified_user(f"talker{check.width}@example.com")
    conversation = Conversation.objects.create(user=user, title="A title " + LONG_WORD[:150])
    Message.objects.create(conversation=conversation, role=Message.USER, content="Say " + LONG_WORD)
    hotkey = Neuron.objects.get(uid=3).hotkey
    Message.objects.create(conversation=conversation, role=Message.ASSISTANT, content=CODE_ANSWER, uid=3, hotkey=hotkey)
    sign_in(page, live_server_url, user)

    page.goto(f"{live_server_url}/app/c/{conversation.pk}/")
    expect(page.locator(".bubble pre")).to_be_visible()
    check("conversation", page.get_by_label("Message"), page.get_by_role("button", name="Send"))
    page.get_by_text("Rename or delete").click()
    check("conversation-actions", page.get_by_role("button", name="Rename"), page.get_by_role("link", name="Delete"))

    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Search miners by description or tag, or by hotkey").fill(hotkey[6:18])
    expect(page.locator("#neuron-results li")).to_have_count(1)
    check("miner-search", page.get_by_role("button", name="Use uid 3"))

    if check.width < 700:
        page.get_by_role("button", name="Conversations").click()
        check("conversations", page.get_by_role("button", name="New chat"))

    page.goto(f"{live_server_url}/app/c/{conversation.pk}/delete/")
    check(
        "delete-conversation",
        page.get_by_role("button", name="Delete conversation"),
        page.get_by_role("link", name="Cancel"),
    )


def test_keys_pages_fit(page, live_server_url, network, check):
    user = verified_user(f"keeper{check.width}@example.com")
    balance = chat_account(user).key
    for name in ("laptop", "server"):
        do_create_user_key(user, name, 2, balance=balance)
    sign_in(page, live_server_url, user)

    page.goto(live_server_url + "/app/keys/")
    page.get_by_role("textbox", name="Name").fill(LONG_NAME)
    page.get_by_label("Credits moved from your chat balance").fill("3")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_label("Full key")).to_be_visible()
    revoke = page.get_by_role("link", name="Revoke " + LONG_NAME)
    check("keys", page.get_by_role("button", name="Copy"), page.get_by_role("link", name="Revoke laptop"), revoke)

    revoke.click()
    check("revoke-key", page.get_by_role("button", name="Revoke key"), page.get_by_role("link", name="Cancel"))
