"""Fixtures for the chat pages: verified users, a browser-like session on the
ASGI application (cookies + CSRF token, as the page's fetch sends them), and
the pages' rate-limit counters (allauth's, the chat's) cleared between tests."""

from __future__ import annotations

import re

import httpx
import pytest
from allauth.account.models import EmailAddress
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.test import Client

from endpoint.core.db import run_db
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


def make_user(email: str):
    user = UserFactory(username=email.split("@")[0], email=email, password=PASSWORD)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


@pytest.fixture
def alice(postgres):
    return make_user("alice@example.com")


@pytest.fixture
def bob(postgres):
    return make_user("bob@example.com")


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies[settings.SESSION_COOKIE_NAME].value


class Browser:
    """An httpx client on the ASGI app carrying a user's session and CSRF token."""

    def __init__(self, client: httpx.AsyncClient, session: str) -> None:
        self.client = client
        self.client.cookies.set(settings.SESSION_COOKIE_NAME, session)
        self.csrf = ""

    async def page(self, path: str) -> httpx.Response:
        response = await self.client.get(path, follow_redirects=True)
        found = re.search(r'name="csrf-token" content="([^"]+)"', response.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def post_form(self, path: str, data: dict) -> httpx.Response:
        return await self.client.post(path, data={**data, "csrfmiddlewaretoken": self.csrf})

    async def send(self, content: str, conversation=None, **settings) -> httpx.Response:
        body = {"conversation": conversation, "content": content, "settings": settings}
        return await self.post_json("/app/send/", body)

    async def post_json(self, path: str, body: dict) -> httpx.Response:
        """What the page's script posts: JSON with the CSRF token in its header."""
        if not self.csrf:
            await self.page("/app/")
        headers = {"X-CSRFToken": self.csrf, "Referer": "http://testserver/app/"}
        return await self.client.post(path, json=body, headers=headers)


@pytest.fixture
async def browser_for(api):
    clients: list[httpx.AsyncClient] = []

    async def make(user) -> Browser:
        # One client per user: cookies are per client.
        client = httpx.AsyncClient(transport=api._transport, base_url="http://testserver", timeout=30)
        clients.append(client)
        return Browser(client, await run_db(session_cookie, user))

    yield make
    for client in clients:
        await client.aclose()
    # The sync pages ran on asgiref's shared thread; its connection would
    # outlive the test database otherwise.
    await sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Hashing built to be slow costs about a second a sign-in; these tests check the pages.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_page_limits():
    """allauth counts sign-ups and failed logins per IP in the cache, and the
    chat's page limits count per user id; every test comes from the same
    loopback address, and user ids restart with each test database."""
    from django.core.cache import caches

    from tests.conftest import delete_redis_keys

    if not delete_redis_keys("*allauth:rl:*") | delete_redis_keys("ratelimit:pages:*"):
        caches["default"].clear()
        caches["ratelimit"].clear()
