"""The validator's hotkey: what every request to a miner is signed with.

Found, in order: the mnemonic in EndpointConfig (`config set
hotkey_mnemonic`), `BT_HOTKEY_MNEMONIC`, or a bittensor wallet directory
(`BT_WALLET_NAME` / `BT_WALLET_HOTKEY` / `BT_WALLET_PATH`).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from bittensor_core import Keypair, deserialize_keypair_from_keyfile_data, keyfile_data_is_encrypted
from django.conf import settings

from endpoint.core import errors
from endpoint.core.config import keypair_from_mnemonic

log = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict[str, Keypair] = {}


def _keypair_from_wallet_dir() -> Keypair | None:
    """The hotkey file of the wallet directory (``<path>/<name>/hotkeys/<hotkey>``).

    A plain keyfile is read with ``bittensor_core`` alone; an encrypted one
    (rare for hotkeys) goes through the SDK's Wallet, which knows where its
    password comes from. The SDK is imported only then: loading it costs
    every worker about 45 MB."""
    name, hotkey = settings.BT_WALLET_NAME, settings.BT_WALLET_HOTKEY
    if not name:
        return None
    try:
        data = (Path(settings.BT_WALLET_PATH).expanduser() / name / "hotkeys" / hotkey).read_bytes()
        if not keyfile_data_is_encrypted(data):
            return deserialize_keypair_from_keyfile_data(data)
        import bittensor as bt

        return bt.Wallet(name=name, hotkey=hotkey, path=settings.BT_WALLET_PATH).hotkey
    except Exception as exc:  # missing file, bad JSON, wrong password: the SDK and core raise several kinds
        log.error("cannot read hotkey of wallet %s/%s: %s", name, hotkey, type(exc).__name__)
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
