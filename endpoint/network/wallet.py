"""The validator's hotkey: what every request to a miner is signed with.

Found, in order: the mnemonic in EndpointConfig (`config set
hotkey_mnemonic`), `BT_HOTKEY_MNEMONIC`, or a bittensor wallet directory
(`BT_WALLET_NAME` / `BT_WALLET_HOTKEY` / `BT_WALLET_PATH`).
"""

from __future__ import annotations

import logging
import threading

import bittensor as bt
from bittensor.sp_core import Keypair
from django.conf import settings

from endpoint import errors

log = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict[str, Keypair] = {}


def keypair_from_mnemonic(mnemonic: str) -> Keypair:
    """The sr25519 hotkey for ``mnemonic``; ValueError (without the words) if invalid."""
    try:
        return Keypair.create_from_mnemonic(" ".join(mnemonic.split()))
    except ValueError:
        raise ValueError("the hotkey mnemonic is not a valid BIP-39 phrase") from None


def _keypair_from_wallet_dir() -> Keypair | None:
    if not settings.BT_WALLET_NAME:
        return None
    wallet = bt.Wallet(name=settings.BT_WALLET_NAME, hotkey=settings.BT_WALLET_HOTKEY, path=settings.BT_WALLET_PATH)
    try:
        return wallet.hotkey
    except Exception as exc:  # the SDK raises several keyfile errors
        log.error("cannot read hotkey of wallet %s/%s: %s", wallet.name, wallet.hotkey_str, type(exc).__name__)
        return None


def validator_hotkey(mnemonic: str) -> Keypair:
    """The hotkey to sign with, given the configured mnemonic ('' if none).

    Raises HotkeyNotConfigured when no source gives one.
    """
    cache_key = mnemonic or f"wallet:{settings.BT_WALLET_PATH}/{settings.BT_WALLET_NAME}/{settings.BT_WALLET_HOTKEY}"
    keypair = _cache.get(cache_key)
    if keypair is not None:
        return keypair
    with _lock:
        if mnemonic:
            try:
                keypair = keypair_from_mnemonic(mnemonic)
            except ValueError:
                log.error("configured hotkey mnemonic is invalid")
                raise errors.HotkeyNotConfigured("The configured hotkey mnemonic is invalid.") from None
        else:
            keypair = _keypair_from_wallet_dir()
        if keypair is None:
            raise errors.HotkeyNotConfigured()
        _cache.clear()
        _cache[cache_key] = keypair
        return keypair
