"""Fixtures for the public API: a key and an HTTP client speaking to the ASGI
application (the subnet and network fixtures are in tests/network_fixtures.py)."""

from __future__ import annotations

import httpx
import pytest

from endpoint.network.minerstats import miner_book
from endpoint.network.protocol import close_shared_session
from endpoint.redis_clients import close_async_redis
from keys.services import do_create_key
from tests.network_fixtures import HELLO

__all__ = ["HELLO"]


@pytest.fixture
def key(network):
    return do_create_key(name="test", credits=1000)


@pytest.fixture
async def api():
    from endpoint.asgi import application

    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
        yield client
    await miner_book().flush()
    # Clients bound to this test's event loop.
    await close_shared_session()
    await close_async_redis()


def bearer(new_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key.raw}", "Endpoint-Version": "2023-05-19"}


@pytest.fixture
def fake_openai(settings):
    from endpoint.config import do_set_config
    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI().start()
    settings.MODERATION_TIMEOUT_SECONDS = 0.5
    do_set_config("openai_base_url", fake.base_url)
    do_set_config("openai_api_key", "sk-test-moderation")
    do_set_config("moderation_enabled", "true")
    yield fake
    fake.stop()
