"""Fixtures for the public API: a real local subnet, a configured validator
hotkey, the metagraph synced from the subnet's snapshot, and an HTTP client
speaking to the ASGI application."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from bittensor.sp_core import Keypair

from endpoint.config import do_set_config
from endpoint.network.localnet import LocalSubnet
from endpoint.network.metagraph import forget_directory, sync_metagraph
from endpoint.network.protocol import close_shared_session
from keys.services import do_create_key

HELLO = [{"role": "user", "content": "What is 1+1?"}]


@pytest.fixture(scope="session")
def subnet():
    with LocalSubnet(8) as running:
        yield running


@pytest.fixture(scope="session")
def validator_mnemonic() -> str:
    return Keypair.generate_mnemonic(12)


@pytest.fixture
def validator(validator_mnemonic) -> Keypair:
    return Keypair.create_from_mnemonic(validator_mnemonic)


@pytest.fixture
def network(transactional_db, subnet, validator_mnemonic, settings):
    """The endpoint configured for the local subnet, miners back to normal."""
    subnet.reset()
    do_set_config("network", "local")
    do_set_config("hotkey_mnemonic", validator_mnemonic)
    forget_directory()
    sync_metagraph(snapshot=subnet.snapshot())
    yield subnet
    forget_directory()


@pytest.fixture
def key(network):
    return do_create_key(name="test", credits=1000)


@pytest.fixture
async def api():
    from endpoint.asgi import application

    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
        yield client
    await close_shared_session()  # it belongs to this test's event loop


@pytest.fixture(scope="session")
def live_server_url():
    """The ASGI application served by uvicorn from a thread of this process,
    for clients that need a real socket (openai, LangChain, SSE streams)."""
    import socket
    import threading

    import uvicorn

    from endpoint.asgi import application

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(application, lifespan="off", log_level="warning", loop="asyncio", access_log=False)
    server = uvicorn.Server(config)

    def serve() -> None:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(server.serve(sockets=[sock]))
        loop.run_until_complete(close_shared_session())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True, name="live-server")
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


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
