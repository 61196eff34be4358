"""Signing requests to miners: the ``btauth/1`` headers.

The wire format is public and small (sha256 of the body, a newline-joined
payload, an sr25519 or ed25519 signature), so the gateway signs with the
native keypair of ``bittensor_core`` directly. Importing the ``bittensor``
SDK for its ``http_auth.sign`` would load the whole SDK (its package
``__init__`` pulls in the chain client, EVM and intent modules): about 45 MB
in every server worker for one function. The localnet miners verify with the
SDK's own ``http_auth.verify``, so every test that reaches a miner checks
that the two agree.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from bittensor_core import CRYPTO_ED25519, CRYPTO_SR25519

PROTOCOL = "btauth/1"
SCHEMES = {CRYPTO_SR25519: "sr25519", CRYPTO_ED25519: "ed25519"}
DEFAULT_SCHEME = "sr25519"  # sent without an X-Bittensor-Crypto header


def signed_payload(
    *, scheme: str, method: str, path: str, body: bytes, nonce_ns: int, sender: str, receiver: str | None
) -> bytes:
    """The exact bytes a btauth/1 signature covers."""
    digest = hashlib.sha256(body).hexdigest()
    lines = (PROTOCOL, scheme, method.upper(), path, digest, str(nonce_ns), sender, receiver or "-")
    return "\n".join(lines).encode()


def sign_request(keypair: Any, *, path: str, body: bytes, receiver: str, method: str = "POST") -> dict[str, str]:
    """The headers that prove this request comes from ``keypair``'s hotkey,
    for the miner ``receiver``, with exactly ``body``, now (a fresh
    nanosecond nonce on every call, retries included)."""
    scheme = SCHEMES.get(keypair.crypto_type)
    if scheme is None:
        raise ValueError(f"cannot sign btauth requests with crypto type {keypair.crypto_type}")
    nonce = time.time_ns()
    sender = keypair.ss58_address
    payload = signed_payload(
        scheme=scheme, method=method, path=path, body=body, nonce_ns=nonce, sender=sender, receiver=receiver
    )
    headers = {
        "X-Bittensor-Version": "1",
        "X-Bittensor-Hotkey": sender,
        "X-Bittensor-Nonce": str(nonce),
        "X-Bittensor-Signature": "0x" + bytes(keypair.sign(payload)).hex(),
        "X-Bittensor-Receiver": receiver,
    }
    if scheme != DEFAULT_SCHEME:
        headers["X-Bittensor-Crypto"] = scheme
    return headers
