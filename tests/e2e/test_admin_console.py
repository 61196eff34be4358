"""An operator in Chromium: signs in, creates a key and reads it once,
calls /chat with it by running the console's own curl preview, finds that
request with its miner rows in the logs and sees the dashboard chart drawn.
A viewer is refused keys and config. Screenshots go to tests/e2e/artifacts/."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from keys.models import ApiKey, hash_secret
from tests.viewers import viewer_group

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = Path(__file__).parent / "artifacts"
PASSWORD = "correct horse battery"


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)


def sign_in(page, base: str, username: str) -> None:
    page.goto(base + "/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/admin/")


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def test_operator_creates_a_key_calls_chat_and_finds_the_request(page, live_server_url, network):
    get_user_model().objects.create_superuser("operator", "op@example.com", PASSWORD)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server_url)
    sign_in(page, live_server_url, "operator")

    # Create a key: shown once, copied with the button.
    page.goto(live_server_url + "/admin/keys/apikey/add/")
    page.get_by_label("Name:").fill("e2e partner")
    page.get_by_label("Credits:").fill("50")
    page.get_by_label("Default strategy:").fill("top_n:2")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#new-key")).to_have_text(re.compile(r"^vep_"))
    raw = page.locator("#new-key").inner_text().strip()
    assert ApiKey.objects.get(name="e2e partner").secret_hash == hash_secret(raw)
    page.get_by_role("button", name="Copy key").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert clipboard(page) == raw
    screenshot(page, "key-created")

    # Never again: not on the key's own page, which has the curl preview instead.
    page.get_by_role("link", name="Edit this key").click()
    expect(page.locator("#curl-preview")).to_be_visible()
    assert raw not in page.content()
    page.locator('[data-copy-target="curl-chat"]').click()
    command = clipboard(page)
    assert "$VEP_KEY" in command and raw not in command
    screenshot(page, "curl-preview")

    # The copied command works as pasted, with the key in the environment.
    ran = subprocess.run(
        ["bash", "-c", command], env={**os.environ, "VEP_KEY": raw}, capture_output=True, text=True, timeout=30
    )
    assert ran.returncode == 0, ran.stderr
    assert '"choices"' in ran.stdout and "Miner" in ran.stdout

    # The request is in the logs, its miner rows inline.
    page.goto(live_server_url + "/admin/logs/request/?route=/chat")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("e2e partner")
    rows.first.locator("a").first.click()
    expect(page.locator(".inline-group")).to_contain_text("Miner")
    expect(page.locator(".inline-group tbody tr").first).to_be_visible()
    screenshot(page, "request-with-miners")

    # The same list as CSV, streamed by the ASGI server.
    export = page.request.get(live_server_url + "/admin/logs/request/export/?route=/chat")
    assert export.ok and export.headers["content-type"].startswith("text/csv")
    lines = export.text().splitlines()
    assert len(lines) == 2 and "e2e partner" in lines[1] and "Hello! What can you do?" in lines[1]

    # The dashboard draws the call.
    page.goto(live_server_url + "/admin/?window=1h")
    chart = page.locator('svg[data-series="requests"]')
    expect(chart).to_be_visible()
    assert chart.get_attribute("data-total") == "1"
    drawn = chart.locator("rect.bar-requests").evaluate_all("bars => bars.filter(b => b.getBBox().height > 0).length")
    assert drawn == 1
    expect(page.locator("#top-keys")).to_contain_text("e2e partner")
    screenshot(page, "dashboard")


def test_viewer_is_refused_keys_and_config(page, live_server_url):
    user = get_user_model().objects.create_user("viewer", "v@example.com", PASSWORD, is_staff=True)
    user.groups.add(viewer_group())
    sign_in(page, live_server_url, "viewer")
    expect(page.locator("#dashboard")).to_be_visible()
    for url in ("/admin/keys/apikey/", "/admin/endpoint/endpointconfig/"):
        response = page.goto(live_server_url + url)
        assert response.status == 403
    assert page.goto(live_server_url + "/admin/logs/request/").status == 200
