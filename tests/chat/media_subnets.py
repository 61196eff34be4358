"""An image and a speech subnet of localnet miners, registered and synced as
an operator would (`manage.py subnets add`, `metagraph sync`), for the chat
page's media tests."""

from __future__ import annotations

import pytest

from endpoint.core.subnets import do_add_subnet
from endpoint.network.localnet import LocalSubnet
from endpoint.network.metagraph import forget_directory, sync_subnet

# slug -> (kind, netuid, price)
MEDIA_SUBNETS = {
    "images": ("image", 19, 5),
    "voice": ("speech", 20, 3),
}


@pytest.fixture(scope="module")
def media_miners():
    nets = {slug: LocalSubnet(2, kind=kind, netuid=netuid) for slug, (kind, netuid, _) in MEDIA_SUBNETS.items()}
    for net in nets.values():
        net.start()
    yield nets
    for net in nets.values():
        net.stop()


def register(slug: str, miners: LocalSubnet, *, synced: bool = True):
    kind, netuid, price = MEDIA_SUBNETS[slug]
    row = do_add_subnet(
        slug, {"name": slug.title(), "kind": kind, "netuid": str(netuid), "network": "local", "price": str(price)}
    )
    if synced:
        sync_subnet(row, snapshot=miners.snapshot())
    return row


@pytest.fixture
def media_subnets(network, media_miners):
    """Both subnets registered and synced from their miners, miners back to normal."""
    for slug, miners in media_miners.items():
        miners.reset()
        register(slug, miners)
    forget_directory()
    yield media_miners
    forget_directory()
