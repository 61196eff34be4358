"""In Chromium: a user creates an API key (shown once, copied with a
button), uses it with curl, revokes it after confirming (cancelling changes
nothing); a 0-credit key is refused; the page fits a phone; another user's
key id is not found."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from playwright.sync_api import expect

from keys.models import ApiKey
from tests.chat.browser_session import assert_fits_width, fast_passwords, screenshot, sign_in, verified_user  # noqa: F401 - fast_passwords is a fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_passwords")]


def _curl_chat(base_url: str, raw_key: str) -> tuple[int, dict]:
    body = json.dumps({"messages": [{"role": "user", "content": "hi from curl"}], "uids": [2]})
    out = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", base_url + "/chat", "-H", f"Authorization: Bearer {raw_key}",
         "-H", "Content-Type: application/json", "-d", body],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    text, _, status = out.rpartition("\n")
    return int(status), json.loads(text)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_create_copy_use_with_curl_and_revoke(page, live_server_url, network):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server_url)
    sign_in(page, live_server_url, verified_user("builder@example.com"))
    page.goto(live_server_url + "/app/keys/")
    _create(page, "laptop script", "5")

    raw = page.get_by_label("Full key").input_value()
    assert raw.startswith("vep_")
    expect(page.get_by_text("it is shown this once")).to_be_visible()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == raw
    screenshot(page, "keys-created")
    status, answer = _curl_chat(live_server_url, raw)
    assert status == 200 and answer["choices"][0]["message"]["content"] == "Miner 2 heard: hi from curl"

    page.goto(live_server_url + "/app/keys/")
    expect(page.get_by_label("Full key")).to_have_count(0)
    assert raw not in page.content()
    row = page.locator("tr", has_text="laptop script")
    expect(row).to_contain_text("4")  # one answer paid from the key's 5 credits
    row.get_by_role("link", name="Revoke laptop script").click()
    expect(page.get_by_role("heading", name="Revoke “laptop script”?")).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    expect(page.locator("tr", has_text="laptop script")).to_contain_text("Active")
    assert _curl_chat(live_server_url, raw)[0] == 200  # cancelling left the key working

    page.locator("tr", has_text="laptop script").get_by_role("link", name="Revoke laptop script").click()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.locator("tr", has_text="laptop script")).to_contain_text("Revoked")
    status, answer = _curl_chat(live_server_url, raw)
    assert status == 401 and answer["code"] == "APIKeyDisabled"


def test_a_key_without_credits_is_not_sent(page, live_server_url, network):
    """The browser holds the form back (the server's refusal: tests/chat/test_keys.py)."""
    user = verified_user("frugal@example.com")
    sign_in(page, live_server_url, user)
    page.goto(live_server_url + "/app/keys/")
    _create(page, "empty", "0")

    credits = page.get_by_label("Credits moved from your chat balance")
    assert credits.evaluate("field => field.validity.rangeUnderflow")
    expect(page.get_by_label("Full key")).to_have_count(0)
    assert not ApiKey.objects.filter(owner=user, name="empty").exists()


def test_keys_page_fits_a_phone(page, live_server_url, network):
    sign_in(page, live_server_url, verified_user("phone@example.com"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_server_url + "/app/keys/")
    for name in ("a rather long key name for the phone", "second", "third"):
        _create(page, name, "1")

    assert_fits_width(page)
    expect(page.get_by_role("button", name="Copy")).to_be_in_viewport()
    for control in (page.get_by_role("button", name="Create key"), page.get_by_role("link", name="Revoke second")):
        control.scroll_into_view_if_needed()
        expect(control).to_be_in_viewport()
    screenshot(page, "keys-phone")


def test_another_users_key_id_is_not_found(page, live_server_url, network):
    owner = verified_user("owner@example.com")
    theirs = ApiKey.objects.create(name="not yours", prefix="vep_xxxx", secret_hash="0" * 64, owner=owner)
    sign_in(page, live_server_url, verified_user("intruder@example.com"))
    page.goto(live_server_url + "/app/keys/")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")

    response = page.request.post(
        f"{live_server_url}/app/keys/{theirs.pk}/revoke/",
        form={"csrfmiddlewaretoken": token},
        headers={"Referer": live_server_url + "/app/keys/"},
    )
    assert response.status == 404
    expect(page.get_by_text("not yours")).to_have_count(0)
    theirs.refresh_from_db()
    assert theirs.enabled


def _create(page, name: str, credits: str) -> None:
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_label("Credits moved from your chat balance").fill(credits)
    page.get_by_role("button", name="Create key").click()
