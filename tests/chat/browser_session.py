"""Shared steps of the chat page tests: a verified user signed in to a
browser context, and screenshots kept under tests/e2e/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.test import Client

from tests.factories import UserFactory

ARTIFACTS = Path(__file__).parent.parent / "e2e" / "artifacts"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def fast_passwords(settings):
    """Password hashing built to be slow costs about a second a sign-in; the
    tests check what the pages do, not the hash's strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def verified_user(email: str):
    user = UserFactory(username=email.split("@")[0], email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def sign_in(page, base_url: str, user) -> None:
    """Give the browser a session for ``user`` (the sign-in form has its own test)."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": base_url}])


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def send(page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


# Elements whose right edge is past the viewport's, unless a box of the page
# that scrolls or clips sideways holds them: those are what a phone user has
# to scroll sideways for, or cannot see at all when the page hides overflow.
STICKING_OUT = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.getBoundingClientRect().right <= width + 1) continue;
    let held = false;
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") { held = true; break; }
    }
    if (!held) found.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + el.className);
  }
  return found;
}"""


# Boxes inside the page that scroll sideways, but for those meant to: code,
# tables, form fields, and one-line text cut with an ellipsis.
SCROLLING_SIDEWAYS = """() => [...document.body.querySelectorAll("*")].filter(el => {
  const style = getComputedStyle(el);
  return style.overflowX !== "visible" && style.textOverflow !== "ellipsis" && el.clientWidth > 1
    && el.scrollWidth > el.clientWidth + 1 && !el.matches("pre, table, .table-wrap, input, textarea, select");
}).map(el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + el.className)"""


def assert_fits_width(page) -> None:
    """No sideways scrolling and nothing cut off at the page's current width."""
    page.wait_for_load_state()  # after a click, measure the new page once its stylesheet is in
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url} is {widths[0]} px wide in a {widths[1]} px window"
    out = page.evaluate(STICKING_OUT)
    assert not out, f"{page.url}: past the right edge: {out}"
    sideways = page.evaluate(SCROLLING_SIDEWAYS)
    assert not sideways, f"{page.url}: scrolls sideways inside: {sideways}"
