"""Fixtures for the public API: a real local subnet, a configured validator
hotkey, the metagraph synced from the subnet's snapshot, and an HTTP client
speaking to the ASGI application."""

from __future__ import annotations

import httpx
import pytest
from bittensor.sp_core import Keypair

from endpoint.config import do_set_config
from endpoint.network.localnet import LocalSubnet
from endpoint.network.protocol import close_shared_session
from endpoint.network.metagraph import forget_directory, sync_metagraph
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


def bearer(new_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key.raw}", "Endpoint-Version": "2023-05-19"}
