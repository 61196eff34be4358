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
