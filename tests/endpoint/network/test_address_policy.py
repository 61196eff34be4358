"""Which miner addresses the endpoint dials (DESIGN §5).

Outside the local network only globally routable IP literals are dialled,
and the URL is built from the checked address. The policy is tested as a
function (no traffic leaves this machine); the live tests only ever use
loopback.
"""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest

from endpoint.core.errors import MinerFailure
from endpoint.network.metagraph import NeuronInfo
from endpoint.network.protocol import check_axon, close_shared_session, open_miner_stream, query_miner
from tests.network_fixtures import HELLO

PUBLIC = [
    # (axon, the URL that is dialled)
    ("8.8.8.8:8091", "http://8.8.8.8:8091"),
    ("1.1.1.1:443", "http://1.1.1.1:443"),
    ("203.0.114.1:1", "http://203.0.114.1:1"),  # just past TEST-NET-3
    ("100.128.0.1:8091", "http://100.128.0.1:8091"),  # just past the shared (CGNAT) range
    ("[2606:4700:4700::1111]:8091", "http://[2606:4700:4700::1111]:8091"),
    ("[2001:4860:4860:0000:0000:0000:0000:8888]:65535", "http://[2001:4860:4860::8888]:65535"),
    # An IPv4-mapped address is dialled as the IPv4 address that was checked.
    ("[::ffff:8.8.8.8]:8091", "http://8.8.8.8:8091"),
    # 6to4 and NAT64 of a public IPv4 address reach that address.
    ("[2002:0808:0808::]:8091", "http://[2002:808:808::]:8091"),
    ("[64:ff9b::808:808]:8091", "http://[64:ff9b::808:808]:8091"),
]

PRIVATE = [
    # (axon, what the refusal says about it)
    ("127.0.0.1:8091", "127.0.0.1 is loopback"),
    ("127.255.255.254:8091", "loopback"),
    ("10.0.0.1:8091", "10.0.0.1 is private"),
    ("172.16.0.1:8091", "private"),
    ("172.31.255.255:8091", "private"),
    ("192.168.1.1:8091", "private"),
    ("169.254.169.254:80", "169.254.169.254 is link-local"),  # cloud metadata
    ("100.64.0.1:8091", "100.64.0.1 is not globally routable"),  # shared address space (CGNAT)
    ("100.100.100.200:80", "not globally routable"),  # a cloud's metadata service, inside CGNAT
    ("192.0.0.1:8091", "192.0.0.1 is private"),
    ("192.0.0.100:8091", "192.0.0.100 is"),  # private or not routable, by Python release
    ("192.0.2.1:8091", "private"),  # TEST-NET-1
    ("198.18.0.1:8091", "private"),  # benchmarking
    ("198.51.100.1:8091", "private"),  # TEST-NET-2
    ("203.0.113.1:8091", "private"),  # TEST-NET-3
    ("192.88.99.1:8091", "192.88.99.1 is"),  # 6to4 relay anycast
    ("224.0.0.1:8091", "224.0.0.1 is multicast"),
    ("239.255.255.250:1900", "multicast"),
    ("240.0.0.1:8091", "240.0.0.1 is"),
    ("255.255.255.255:8091", "255.255.255.255 is"),
    ("0.0.0.0:8091", "0.0.0.0 is unspecified"),
    ("0.1.2.3:8091", "0.1.2.3 is private"),
    ("[::1]:8091", "::1 is loopback"),
    ("[::]:8091", ":: is unspecified"),
    ("[fe80::1]:8091", "fe80::1 is link-local"),
    ("[fc00::1]:8091", "fc00::1 is private"),
    ("[fd00::1]:8091", "fd00::1 is private"),
    ("[fd00:ec2::254]:80", "private"),  # a cloud's IPv6 metadata service
    ("[ff02::1]:8091", "ff02::1 is multicast"),
    ("[2001:db8::1]:8091", "2001:db8::1 is private"),  # documentation
    ("[3fff::1]:8091", "3fff::1 is"),  # documentation (RFC 9637)
    ("[100::1]:8091", "100::1 is"),  # discard-only
    ("[5f00::1]:8091", "5f00::1 is"),  # outside global unicast 2000::/3
    ("[::7f00:1]:8091", "::7f00:1 is"),  # IPv4-compatible, deprecated
    ("[::808:808]:8091", "::808:808 is"),
    # IPv4-mapped: the IPv4 address inside is what would be dialled.
    ("[::ffff:127.0.0.1]:8091", "127.0.0.1 is loopback"),
    ("[::ffff:7f00:1]:8091", "127.0.0.1 is loopback"),
    ("[::ffff:10.0.0.1]:8091", "10.0.0.1 is private"),
    ("[::ffff:169.254.169.254]:80", "169.254.169.254 is link-local"),
    # 6to4: a relay dials the IPv4 address in bits 16-48.
    ("[2002:7f00:1::]:8091", "6to4 for 127.0.0.1, which is loopback"),
    ("[2002:a9fe:a9fe::1]:80", "6to4 for 169.254.169.254, which is link-local"),
    ("[2002:6440:1::]:8091", "6to4 for 100.64.0.1, which is not globally routable"),
    # Teredo: server 10.0.0.1, client 192.168.1.1 (stored inverted).
    ("[2001:0:a00:1:0:0:3f57:fefe]:8091", "Teredo for 10.0.0.1, which is private"),
    # Teredo between public addresses is still a tunnel, not a place to serve from.
    ("[2001:0:808:808:0:0:fefe:fefe]:8091", "2001:0:808:808::fefe:fefe is private"),
    # NAT64: the gateway dials the IPv4 address in the last 32 bits.
    ("[64:ff9b::7f00:1]:8091", "NAT64 for 127.0.0.1, which is loopback"),
    ("[64:ff9b::a9fe:a9fe]:80", "NAT64 for 169.254.169.254, which is link-local"),
    ("[64:ff9b::10.0.0.1]:8091", "NAT64 for 10.0.0.1, which is private"),
    ("[64:ff9b:1::a00:1]:8091", "64:ff9b:1::a00:1 is"),  # local-use NAT64
]

NOT_AN_IP = [
    # Numbers some resolvers read as 127.0.0.1, and names: never dialled off the local network.
    "2130706433:8091",
    "0x7f000001:8091",
    "017700000001:8091",
    "127.1:8091",
    "127.0.1:8091",
    "0177.0.0.1:8091",
    "127.000.000.001:8091",
    "0x7f.0.0.1:8091",
    "８.８.８.８:8091",  # full-width digits
    "8.8.8.8 :8091",
    "localhost:8091",
    "metadata.google.internal:80",
    "dns.google:443",
    "[dns.google]:443",
]

MALFORMED = [
    # (axon, what the refusal says)
    ("8.8.8.8", "is not ip:port"),
    (":8091", "is not ip:port"),
    ("8.8.8.8:", "no valid port"),
    ("8.8.8.8:0", "no valid port"),
    ("8.8.8.8:65536", "no valid port"),
    ("8.8.8.8:99999", "no valid port"),
    ("8.8.8.8:-1", "no valid port"),
    ("8.8.8.8:+80", "no valid port"),
    ("8.8.8.8:８０", "no valid port"),
    ("8.8.8.8:80 ", "no valid port"),
    ("[2606:4700:4700::1111]", "no valid port"),
    ("[2606:4700:4700::1111]:0", "no valid port"),
    ("2606:4700:4700::1111:8091", "an IPv6 address goes in brackets"),
    ("[8.8.8.8]:8091", "is not ip:port"),
]


@pytest.mark.parametrize(("axon", "url"), PUBLIC)
def test_public_addresses_are_dialled_as_checked(axon, url):
    assert check_axon(axon, allow_private=False) == url


@pytest.mark.parametrize(("axon", "why"), PRIVATE)
def test_non_public_addresses_are_refused_off_the_local_network(axon, why):
    with pytest.raises(MinerFailure) as refused:
        check_axon(axon, allow_private=False)
    message = str(refused.value)
    assert why in message
    assert "address policy" in message
    assert f"miner axon {axon} is a private address" in message


@pytest.mark.parametrize("axon", NOT_AN_IP)
def test_anything_but_an_ip_literal_is_refused_off_the_local_network(axon):
    with pytest.raises(MinerFailure) as refused:
        check_axon(axon, allow_private=False)
    assert "is not an IP address; refused by the address policy" in str(refused.value)


@pytest.mark.parametrize(("axon", "why"), MALFORMED)
@pytest.mark.parametrize("allow_private", [False, True])
def test_malformed_axons_are_refused_everywhere(axon, why, allow_private):
    with pytest.raises(MinerFailure) as refused:
        check_axon(axon, allow_private=allow_private)
    assert why in str(refused.value)


@pytest.mark.parametrize("axon", ["[2606:4700:4700::1111%eth0]:8091", "[fe80::1%2]:8091"])
def test_interface_scoped_addresses_are_refused_off_the_local_network(axon):
    with pytest.raises(MinerFailure, match="names a network interface; refused by the address policy"):
        check_axon(axon, allow_private=False)


def test_a_miner_without_an_axon_is_refused():
    with pytest.raises(MinerFailure, match="serves no axon"):
        check_axon("", allow_private=False)


@pytest.mark.parametrize(
    ("axon", "url"),
    [
        ("127.0.0.1:9100", "http://127.0.0.1:9100"),
        ("10.0.0.5:9100", "http://10.0.0.5:9100"),
        ("[::1]:9100", "http://[::1]:9100"),
        ("localhost:9100", "http://localhost:9100"),
        ("8.8.8.8:8091", "http://8.8.8.8:8091"),
    ],
)
def test_the_local_network_dials_loopback_private_and_names(axon, url):
    assert check_axon(axon, allow_private=True) == url


def test_the_table_is_broad():
    assert len(PUBLIC) + len(PRIVATE) + len(NOT_AN_IP) + len(MALFORMED) >= 40


# --- live, on loopback only ----------------------------------------------------------


def _neuron(miner) -> NeuronInfo:
    return NeuronInfo(uid=miner.uid, hotkey=miner.hotkey, axon=miner.axon)


def _payload() -> bytes:
    return orjson.dumps({"model": "auto", "messages": HELLO})


class Listener:
    """A loopback TCP socket that only counts connections: nothing may arrive."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.axon = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.fixture
async def miner_client():
    yield
    await close_shared_session()  # bound to this test's event loop


@pytest.fixture
def listener():
    listening = Listener()
    yield listening
    listening.sock.close()


async def test_a_loopback_miner_answers_on_the_local_network(subnet, validator, miner_client):
    subnet.reset()
    miner = subnet.miner(0)
    result = await query_miner(
        _neuron(miner), _payload(), keypair=validator, path="/v1/chat/completions", timeout=5, allow_private=True
    )
    assert result.ok, result.error
    assert result.content == "Miner 0 heard: What is 1+1?"
    assert len(miner.seen) == 1


async def test_a_loopback_miner_is_a_failed_response_elsewhere_and_is_never_dialled(
    subnet, validator, listener, miner_client
):
    subnet.reset()
    miner = subnet.miner(0)
    for neuron in (_neuron(miner), NeuronInfo(uid=9, hotkey=miner.hotkey, axon=listener.axon)):
        result = await query_miner(
            neuron, _payload(), keypair=validator, path="/v1/chat/completions", timeout=5, allow_private=False
        )
        assert not result.ok
        assert f"miner axon {neuron.axon} is a private address (127.0.0.1 is loopback)" in result.error
        assert "address policy" in result.error
    await asyncio.sleep(0.1)  # a connection, had one been made, would be waiting by now
    assert listener.connections() == 0
    assert miner.seen == []


async def test_a_loopback_miner_is_refused_before_a_stream_opens(subnet, validator, listener, miner_client):
    neuron = NeuronInfo(uid=9, hotkey=subnet.miner(0).hotkey, axon=listener.axon)
    with pytest.raises(MinerFailure, match="address policy"):
        await open_miner_stream(
            neuron, _payload(), keypair=validator, path="/v1/chat/completions", timeout=5, allow_private=False
        )
    await asyncio.sleep(0.1)
    assert listener.connections() == 0
