"""The address policy: which miner axons the gateway may dial.

Outside the local network a miner's axon comes from the chain, where anyone
may register any address; without a policy the gateway could be pointed at
its own loopback, the cloud metadata service or a private network. So only
globally routable IP literals are dialled, and the URL is built from the
parsed address itself: what was checked is exactly what is connected to, with
no name to resolve (and no DNS answer to change between check and connect).
"""

from __future__ import annotations

import functools
import ipaddress

_NOT_GLOBAL_EXTRA: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("192.88.99.0/24"),  # deprecated 6to4 relay anycast
    ipaddress.ip_network("3fff::/20"),  # documentation (RFC 9637)
)
_IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class _Refused(Exception):
    """The address policy's reason for not dialling an axon."""


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "not globally routable"


def _not_public_v4(address: ipaddress.IPv4Address) -> str | None:
    """What keeps ``address`` from being public, or None if it is."""
    if address.is_global and not address.is_multicast and not any(address in n for n in _NOT_GLOBAL_EXTRA):
        return None
    return _kind(address)


def _embedded_v4(address: ipaddress.IPv6Address) -> tuple[str, list[ipaddress.IPv4Address]] | None:
    """The transition form ``address`` is, and the IPv4 addresses it carries."""
    if address in _NAT64:
        return "NAT64", [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour:
        return "6to4", [address.sixtofour]
    if address.teredo:
        return "Teredo", list(address.teredo)
    return None


def _why_not_public_v6(address: ipaddress.IPv6Address) -> str | None:
    wrapped = _embedded_v4(address)
    if wrapped:
        # A relay or gateway on the way dials the IPv4 address inside: it must be public too.
        form, inner = wrapped
        for embedded in inner:
            kind = _not_public_v4(embedded)
            if kind:
                return f"{address} is {form} for {embedded}, which is {kind}"
        if form != "Teredo":  # NAT64 and 6to4 of a public address reach that address
            return None
    if (
        address in _IPV6_GLOBAL_UNICAST
        and address.is_global
        and not address.is_multicast
        and not any(address in n for n in _NOT_GLOBAL_EXTRA)
    ):
        return None
    return f"{address} is {_kind(address)}"


def _split_axon(axon: str) -> tuple[str, int, bool]:
    """(host, port, bracketed) of ``host:port`` or ``[v6]:port``."""
    host, sep, port = axon.rpartition(":")
    if not sep or not host:
        raise _Refused(f"miner axon {axon!r} is not ip:port")
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) <= 65535:
        raise _Refused(f"miner axon {axon!r} has no valid port (1-65535)")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    elif ":" in host:  # an IPv6 address without brackets: where it ends and the port starts is a guess
        raise _Refused(f"miner axon {axon!r} is not ip:port (an IPv6 address goes in brackets)")
    return host, int(port), bracketed


def _url(address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    return f"http://{address}:{port}" if address.version == 4 else f"http://[{address}]:{port}"


def _public_url(axon: str) -> str:
    host, port, bracketed = _split_axon(axon)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # Names, and numbers in disguise ("2130706433", "0x7f000001", "127.1"),
        # which some resolvers would turn into loopback.
        raise _Refused(
            f"miner axon host {host!r} is not an IP address; refused by the address policy outside the local network"
        ) from None
    if bracketed != (address.version == 6) or (address.version == 4 and str(address) != host):
        raise _Refused(f"miner axon {axon!r} is not ip:port")
    if address.version == 6 and address.scope_id:
        raise _Refused(f"miner axon {axon!r} names a network interface; refused by the address policy")
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped  # dial the IPv4 address itself: that is what was checked
    if address.version == 4:
        kind = _not_public_v4(address)
        why = f"{address} is {kind}" if kind else None
    else:
        why = _why_not_public_v6(address)
    if why:
        raise _Refused(
            f"miner axon {axon} is a private address ({why}); "
            "the address policy allows only public addresses outside the local network"
        )
    return _url(address, port)


def _local_url(axon: str) -> str:
    # On the local network anything goes, names included: it is the operator's own machine.
    host, port, bracketed = _split_axon(axon)
    if not bracketed:
        return f"http://{host}:{port}"
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise _Refused(f"miner axon {axon!r} is not ip:port (only an IPv6 address goes in brackets)") from None
    return f"http://[{host}]:{port}"


@functools.lru_cache(maxsize=4096)
def axon_url(axon: str, allow_private: bool) -> tuple[str, str]:
    """(url, "") or ("", why it is refused); cached, as it runs for every miner call."""
    try:
        return (_local_url(axon) if allow_private else _public_url(axon)), ""
    except _Refused as refused:
        return "", str(refused)
