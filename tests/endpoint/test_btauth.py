"""The gateway signs miner requests with its own btauth/1 signer; a miner
running the bittensor SDK's verifier must accept every one of them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from bittensor import http_auth
from bittensor_core import CRYPTO_ED25519, Keypair

from endpoint.network.btauth import sign_request
from tests.servers import ROOT

BODY = b'{"messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture
def keys():
    validator = Keypair.create_from_mnemonic(Keypair.generate_mnemonic(12))
    miner = Keypair.create_from_mnemonic(Keypair.generate_mnemonic(12))
    return validator, miner


def test_the_sdk_verifier_accepts_our_signature(keys):
    validator, miner = keys
    headers = sign_request(validator, path="/v1/chat/completions", body=BODY, receiver=miner.ss58_address)
    caller = http_auth.verify(
        headers, BODY, method="POST", path="/v1/chat/completions", self_hotkey_ss58=miner.ss58_address
    )
    assert caller.hotkey_ss58 == validator.ss58_address


def test_ed25519_hotkeys_say_their_scheme(keys):
    _, miner = keys
    validator = Keypair.create_from_mnemonic(Keypair.generate_mnemonic(12), CRYPTO_ED25519)
    headers = sign_request(validator, path="/chat", body=BODY, receiver=miner.ss58_address)
    assert headers["X-Bittensor-Crypto"] == "ed25519"
    caller = http_auth.verify(headers, BODY, method="POST", path="/chat", self_hotkey_ss58=miner.ss58_address)
    assert caller.hotkey_ss58 == validator.ss58_address


@pytest.mark.parametrize(
    "tamper",
    [
        {"body": BODY + b" "},
        {"path": "/other"},
        {"receiver": "other"},
    ],
    ids=["body", "path", "receiver"],
)
def test_a_changed_request_fails_verification(keys, tamper):
    validator, miner = keys
    headers = sign_request(validator, path="/chat", body=BODY, receiver=miner.ss58_address)
    other = Keypair.create_from_mnemonic(Keypair.generate_mnemonic(12)).ss58_address
    with pytest.raises(http_auth.AuthError):
        http_auth.verify(
            headers,
            tamper.get("body", BODY),
            method="POST",
            path=tamper.get("path", "/chat"),
            self_hotkey_ss58=other if "receiver" in tamper else miner.ss58_address,
        )


def test_every_request_has_a_fresh_nonce_so_retries_are_not_replays(keys):
    validator, miner = keys
    store = http_auth.InMemoryNonceStore()
    for _ in range(3):
        headers = sign_request(validator, path="/chat", body=BODY, receiver=miner.ss58_address)
        http_auth.verify(
            headers, BODY, method="POST", path="/chat", self_hotkey_ss58=miner.ss58_address, nonce_store=store
        )


def test_a_web_worker_loads_neither_the_sdk_nor_celery_nor_dateparser():
    """What a server worker imports to serve the API and pages: the bittensor
    SDK (~45 MB), Celery and dateparser would only cost memory there."""
    code = (
        "import sys, django; django.setup(); import endpoint.asgi; "
        "from django.urls import get_resolver; get_resolver().url_patterns; import endpoint.gateway; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'bittensor', 'celery', 'dateparser', 'openai'}))"
    )
    env = {"DJANGO_SETTINGS_MODULE": "endpoint.settings", "PATH": "/usr/bin:/bin", "DATABASE_URL": "sqlite://:memory:"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
