"""Shared fixtures. Real services only: Postgres and Redis come from
DATABASE_URL / REDIS_URL; in CI (CI=true) a test that needs one fails when
it is missing instead of skipping."""

from __future__ import annotations

import os

import httpx
import pytest
from django.conf import global_settings, settings
from django.db import connection
from django.test import Client

from endpoint.core.db import close_db_threads
from tests import fast_flush
from tests.factories import UserFactory

fast_flush.install()

pytest_plugins = ["tests.network_fixtures", "tests.browser", "tests.openai_spec_check"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_service(what: str) -> None:
    message = f"{what} is required for this test (set DATABASE_URL / REDIS_URL)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def postgres(transactional_db):
    """The test runs on the real PostgreSQL."""
    if connection.vendor != "postgresql":
        missing_service("PostgreSQL")


@pytest.fixture
def redis_url() -> str:
    url = settings.REDIS_URL
    if not url:
        missing_service("Redis")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        missing_service(f"Redis at {url}")
    return url


@pytest.fixture
async def api():
    """An HTTP client speaking to the ASGI application (the public API and the chat pages)."""
    from endpoint.asgi import application
    from endpoint.core.redis_clients import close_async_redis
    from endpoint.network.minerstats import miner_book
    from endpoint.network.protocol import close_shared_session

    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
        yield client
    await miner_book().flush()
    # Clients bound to this test's event loop.
    await close_shared_session()
    await close_async_redis()


@pytest.fixture
def operator(postgres):
    return UserFactory(username="operator", is_staff=True, is_superuser=True)


@pytest.fixture
def console(operator) -> Client:
    """A browserless client signed in as a superuser."""
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture(autouse=True)
def _quick_passwords(settings):
    settings.PASSWORD_HASHERS = ["tests.hashers.QuickPBKDF2PasswordHasher", *global_settings.PASSWORD_HASHERS]


@pytest.fixture(autouse=True)
def _close_db_threads():
    """Connections opened by async code's DB threads must not outlive a test
    (they would block the next test's flush and the final DROP DATABASE)."""
    yield
    close_db_threads()


@pytest.fixture(autouse=True)
def _fresh_runtime_state():
    from endpoint.core.config import forget_runtime_config
    from endpoint.core.subnets import forget_served_subnets

    forget_runtime_config()
    forget_served_subnets()
    yield
    forget_runtime_config()
    forget_served_subnets()


@pytest.fixture(scope="session", autouse=True)
def _fresh_rate_limit_counters():
    """Key ids restart with every test database; counters in Redis would not."""
    delete_redis_keys("ratelimit:*")


def delete_redis_keys(pattern: str) -> bool:
    """Delete the test Redis's keys matching ``pattern``; False without Redis."""
    if not settings.REDIS_URL:
        return False
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1)
        for name in client.scan_iter(pattern, count=500):
            client.delete(name)
    except redis.RedisError:
        pass  # tests that need Redis say so themselves
    return True
