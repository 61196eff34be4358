"""Fixtures for anything that prompts the network: a real local subnet, a
configured validator hotkey, the metagraph synced from the subnet's snapshot,
and the ASGI application on a real socket. Loaded for every test directory
from tests/conftest.py."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from bittensor.sp_core import Keypair
from django.db import connections

from endpoint.core.config import do_set_config
from endpoint.core.subnets import do_add_subnet
from endpoint.network.localnet import LocalSubnet
from endpoint.network.metagraph import forget_directory, sync_metagraph, sync_subnet
from endpoint.network.minerstats import miner_book
from endpoint.network.protocol import close_shared_session

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
    miner_book().clear()  # what miners did in other tests must not steer routing here
    do_set_config("network", "local")
    do_set_config("hotkey_mnemonic", validator_mnemonic)
    forget_directory()
    sync_metagraph(snapshot=subnet.snapshot())
    yield subnet
    forget_directory()


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
        # Sync views ran in asgiref's shared thread: close its connection, or
        # the test database could not be dropped at the end.
        loop.run_until_complete(sync_to_async(connections.close_all)())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True, name="live-server")
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


# slug -> (kind, netuid, price)
MEDIA_SUBNETS = {
    "images": ("image", 19, 5),
    "speech": ("speech", 20, 3),
    "transcribe": ("transcription", 21, 2),
    "embed": ("embeddings", 22, 1),
}


@pytest.fixture(scope="session")
def media_miners():
    nets = {slug: LocalSubnet(2, kind=kind, netuid=netuid) for slug, (kind, netuid, _) in MEDIA_SUBNETS.items()}
    for net in nets.values():
        net.start()
    yield nets
    for net in nets.values():
        net.stop()


@pytest.fixture
def media(network, media_miners):
    """The four subnets registered (as `manage.py subnets add` does) and synced from their miners."""
    for slug, (kind, netuid, price) in MEDIA_SUBNETS.items():
        miners = media_miners[slug]
        miners.reset()
        row = do_add_subnet(
            slug,
            {"name": slug.title(), "kind": kind, "netuid": str(netuid), "network": "local", "price": str(price)},
        )
        sync_subnet(row, snapshot=miners.snapshot())
    forget_directory()
    yield media_miners
    forget_directory()


@pytest.fixture
def fake_openai(settings):
    """A moderation endpoint on loopback, turned on in the config; flags its ``flag_word``."""
    from endpoint.core.config import do_set_config
    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI().start()
    settings.MODERATION_TIMEOUT_SECONDS = 0.5
    do_set_config("openai_base_url", fake.base_url)
    do_set_config("openai_api_key", "sk-test-moderation")
    do_set_config("moderation_enabled", "true")
    yield fake
    fake.stop()
