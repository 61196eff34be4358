import pytest
from bittensor.sp_core import Keypair

from endpoint.core import errors
from endpoint.network.wallet import keypair_from_mnemonic, validator_hotkey


def test_hotkey_comes_from_the_mnemonic():
    mnemonic = Keypair.generate_mnemonic(12)
    expected = Keypair.create_from_mnemonic(mnemonic).ss58_address
    assert validator_hotkey(mnemonic).ss58_address == expected
    assert keypair_from_mnemonic("  " + mnemonic.replace(" ", "  ") + " ").ss58_address == expected


def test_no_hotkey_anywhere_is_a_503(settings):
    settings.BT_WALLET_NAME = ""
    with pytest.raises(errors.HotkeyNotConfigured):
        validator_hotkey("")


def test_invalid_mnemonic_error_does_not_echo_the_words():
    with pytest.raises(ValueError) as info:
        keypair_from_mnemonic("correct horse battery staple secretword")
    assert "secretword" not in str(info.value)


def test_hotkey_from_a_wallet_directory(tmp_path, settings):
    import bittensor as bt

    wallet = bt.Wallet(name="val", hotkey="hk", path=str(tmp_path))
    mnemonic = Keypair.generate_mnemonic(12)
    wallet.regenerate_hotkey(mnemonic=mnemonic, use_password=False, overwrite=True, suppress=True)
    settings.BT_WALLET_NAME, settings.BT_WALLET_HOTKEY, settings.BT_WALLET_PATH = "val", "hk", str(tmp_path)
    assert validator_hotkey("").ss58_address == Keypair.create_from_mnemonic(mnemonic).ss58_address


def test_a_missing_wallet_file_is_a_503_not_a_crash(tmp_path, settings, caplog):
    settings.BT_WALLET_NAME, settings.BT_WALLET_HOTKEY, settings.BT_WALLET_PATH = "nowallet", "hk", str(tmp_path)
    with pytest.raises(errors.HotkeyNotConfigured):
        validator_hotkey("")
    assert "cannot read hotkey of wallet nowallet/hk" in caplog.text
