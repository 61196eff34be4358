"""Accounts with django-allauth: sign up, verify the email, sign in and out,
reset the password, failed logins limited, sessions that expire, GitHub
login against a local fake GitHub."""

from __future__ import annotations

import re

import pytest
import requests
from django.core import mail
from django.test import Client

from chat.security import POLICY

from .conftest import PASSWORD, make_user
from .fake_github import FakeGitHub

pytestmark = pytest.mark.postgres

LINK = re.compile(r"https?://[^/\s]+(/accounts/[^\s]+)")


def _link_in_last_email() -> str:
    return LINK.search(mail.outbox[-1].body).group(1)


def test_sign_up_verify_email_and_start_with_the_grant(postgres, settings):
    settings.CHAT_SIGNUP_CREDITS = 25
    client = Client()
    signed_up = client.post(
        "/accounts/signup/", {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert signed_up.status_code == 302
    # Not in before the email is confirmed.
    assert client.get("/app/").status_code == 302
    assert mail.outbox[-1].to == ["new@example.com"]

    confirmed = client.get(_link_in_last_email(), follow=True)
    assert confirmed.redirect_chain[-1][0] == "/app/"
    assert 'Chat credits: <strong id="balance">25</strong>' in confirmed.content.decode()


def test_sign_in_and_out(postgres):
    make_user("carol@example.com")
    client = Client()
    page = client.get("/accounts/login/").content.decode()
    assert '<label for="id_login">Email:</label>' in page and '<label for="id_password">Password:</label>' in page
    signed_in = client.post("/accounts/login/", {"login": "carol@example.com", "password": PASSWORD}, follow=True)
    assert signed_in.redirect_chain[-1][0] == "/app/"
    assert "Sign out" in signed_in.content.decode()

    client.post("/accounts/logout/")
    assert client.get("/app/").status_code == 302


def test_failed_logins_are_rate_limited(postgres):
    make_user("dave@example.com")
    client = Client()
    for _ in range(5):
        wrong = client.post("/accounts/login/", {"login": "dave@example.com", "password": "wrong password"})
        assert "The email address and/or password you specified are not correct." in wrong.content.decode()
    limited = client.post("/accounts/login/", {"login": "dave@example.com", "password": PASSWORD})
    assert limited.status_code == 200  # even the right password waits now
    assert "Too many failed login attempts. Try again later." in limited.content.decode()
    assert client.get("/app/").status_code == 302


def test_password_reset_by_email(postgres):
    make_user("erin@example.com")
    client = Client()
    client.post("/accounts/password/reset/", {"email": "erin@example.com"})
    reset_page = client.get(_link_in_last_email(), follow=True)
    form_url = reset_page.redirect_chain[-1][0]
    new = "a brand new passphrase 42"
    done = client.post(form_url, {"password1": new, "password2": new}, follow=True)
    assert "Your password is now changed." in done.content.decode()
    assert Client().login(username="erin", password=new)


def test_session_expires_after_the_configured_age(postgres, settings):
    settings.SESSION_COOKIE_AGE = 3600
    make_user("frank@example.com")
    client = Client()
    client.post("/accounts/login/", {"login": "frank@example.com", "password": PASSWORD, "remember": "on"})
    assert client.session.get_expiry_age() == 3600
    assert client.cookies["sessionid"]["max-age"] == 3600


def test_pages_forbid_inline_script(postgres):
    client = Client()
    client.force_login(make_user("gina@example.com"), backend="django.contrib.auth.backends.ModelBackend")
    for path in ("/app/", "/app/keys/", "/accounts/password/change/"):
        response = client.get(path)
        assert response["Content-Security-Policy"] == POLICY
        assert "script-src 'self'" in POLICY and "unsafe-inline" not in POLICY
        assert "<script>" not in response.content.decode()


def test_social_buttons_only_when_configured(postgres, settings):
    assert "GitHub" not in Client().get("/accounts/login/").content.decode()
    settings.SOCIALACCOUNT_PROVIDERS = {
        "github": {"APPS": [{"client_id": "id", "secret": "s"}]},
        "google": {"APPS": [{"client_id": "id", "secret": "s"}]},
    }
    page = Client().get("/accounts/login/").content.decode()
    assert 'href="/accounts/github/login/?process=login"' in page
    assert 'href="/accounts/google/login/?process=login"' in page


@pytest.fixture
def fake_github(settings, monkeypatch):
    from allauth.socialaccount.providers.github.views import GitHubOAuth2Adapter

    settings.SOCIALACCOUNT_PROVIDERS = {
        "github": {"APPS": [{"client_id": "gh-client", "secret": "gh-secret"}], "SCOPE": ["user:email"]}
    }
    with FakeGitHub("gh-client", "gh-secret", login="octocat", email="octo@example.com") as fake:
        # allauth reads GitHub's URLs when its module is imported; point them at the fake.
        monkeypatch.setattr(GitHubOAuth2Adapter, "authorize_url", fake.base_url + "/login/oauth/authorize")
        monkeypatch.setattr(GitHubOAuth2Adapter, "access_token_url", fake.base_url + "/login/oauth/access_token")
        monkeypatch.setattr(GitHubOAuth2Adapter, "profile_url", fake.base_url + "/api/v3/user")
        monkeypatch.setattr(GitHubOAuth2Adapter, "emails_url", fake.base_url + "/api/v3/user/emails")
        yield fake


def test_github_login_signs_up_and_opens_the_chat(postgres, fake_github, settings):
    client = Client()
    confirm = client.get("/accounts/github/login/?process=login")
    assert confirm.status_code == 200  # a POST starts the login (CSRF-checked), never a GET
    to_github = client.post("/accounts/github/login/?process=login")
    assert to_github["Location"].startswith(fake_github.base_url + "/login/oauth/authorize?")

    approved = requests.get(to_github["Location"], allow_redirects=False, timeout=5)
    callback = approved.headers["Location"]
    assert callback.startswith("http://testserver/accounts/github/login/callback/?code=")
    landed = client.get(callback.removeprefix("http://testserver"), follow=True)

    assert landed.redirect_chain[-1][0] == "/app/"
    page = landed.content.decode()
    assert f'Chat credits: <strong id="balance">{settings.CHAT_SIGNUP_CREDITS}</strong>' in page
    assert fake_github.token_requests[-1]["client_secret"] == "gh-secret"
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.get(email="octo@example.com").socialaccount_set.get().uid == "4242"


def test_github_login_with_a_forged_state_is_refused(postgres, fake_github):
    client = Client()
    client.post("/accounts/github/login/?process=login")
    refused = client.get("/accounts/github/login/callback/?code=whatever&state=forged")
    assert "Third-Party Login Failure" in refused.content.decode()
    assert client.get("/app/").status_code == 302
