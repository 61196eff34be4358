"""`manage.py config get|set`: settings an operator can read and change, and a
hotkey mnemonic that is never shown or stored in plaintext."""

from __future__ import annotations

import pytest
from bittensor.sp_core import Keypair
from django.db import connection
from django.forms.models import model_to_dict

from endpoint.core.config import FIELDS
from endpoint.core.models import EndpointConfig
from endpoint.core.version import VERSION
from tests.commands import manage, manage_py


def config_row() -> dict:
    return model_to_dict(EndpointConfig.load())


def word_pairs(phrase: str) -> list[str]:
    words = phrase.split()
    return [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


@pytest.fixture
def mnemonic() -> str:
    return Keypair.generate_mnemonic(12)


def test_mnemonic_is_stored_encrypted_and_only_ever_shown_masked(db, mnemonic):
    code, out, err = manage("config", "set", "hotkey_mnemonic", mnemonic)
    assert code == 0, err
    address = Keypair.create_from_mnemonic(mnemonic).ss58_address
    assert out == f"hotkey_mnemonic = ****** (12 words)\nhotkey ss58 address: {address}\n"

    code, table, _ = manage("config", "get")
    assert code == 0
    assert "hotkey_mnemonic" in table and "****** (12 words)" in table

    code, one, _ = manage("config", "get", "hotkey_mnemonic")
    assert code == 0
    assert one == "****** (12 words)\n"

    for shown in (out, table, one):
        assert not any(pair in shown for pair in word_pairs(mnemonic))

    with connection.cursor() as cursor:
        cursor.execute("SELECT hotkey_mnemonic_encrypted FROM endpoint_endpointconfig")
        (stored,) = cursor.fetchone()
    assert stored
    assert not any(pair in stored for pair in word_pairs(mnemonic))
    assert stored.startswith("gAAAA") and " " not in stored  # a Fernet token, not words

    assert EndpointConfig.load().hotkey_mnemonic == mnemonic


def test_mnemonic_typed_without_quotes_is_taken_whole_and_never_echoed(postgres, mnemonic):
    result = manage_py("config", "set", "hotkey_mnemonic", *mnemonic.split())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("hotkey_mnemonic = ****** (12 words)\nhotkey ss58 address: 5")
    assert EndpointConfig.load().hotkey_mnemonic == mnemonic

    shown = manage_py("config", "get")
    assert shown.returncode == 0
    assert "12 words" in shown.stdout
    assert not any(pair in shown.stdout for pair in word_pairs(mnemonic))


def test_an_invalid_mnemonic_is_refused_without_repeating_it(postgres, mnemonic):
    before = config_row()
    not_a_phrase = " ".join(reversed(mnemonic.split()))[:-1] + "zz"
    result = manage_py("config", "set", "hotkey_mnemonic", *not_a_phrase.split())
    assert result.returncode == 1
    assert result.stderr == "Error: the hotkey mnemonic is not a valid BIP-39 phrase\n"
    assert result.stdout == ""
    assert config_row() == before


def test_set_then_get_plain_values(db):
    assert manage("config", "set", "netuid", "18")[1] == "netuid = 18\n"
    assert manage("config", "set", "rate_limiting_enabled", "yes")[1] == "rate_limiting_enabled = true\n"
    limits = '[{"times": 10, "seconds": 60}]'
    assert manage("config", "set", "global_rate_limits", limits)[0] == 0

    assert manage("config", "get", "netuid")[1] == "18\n"
    assert manage("config", "get", "global_rate_limits")[1] == limits + "\n"
    code, table, _ = manage("config", "get")
    assert code == 0
    row = next(line for line in table.splitlines() if "rate_limiting_enabled" in line)
    assert "true" in row


def test_openai_key_is_masked_too(db):
    manage("config", "set", "openai_api_key", "sk-test-0123456789abcdefWXYZ")
    code, out, _ = manage("config", "get", "openai_api_key")
    assert code == 0
    assert out == "****WXYZ\n"
    assert "0123456789" not in manage("config", "get")[1]


BAD_SETS = {
    "unknown name": (["set", "hotkey", "x"], "unknown config name 'hotkey'"),
    "not a number": (["set", "netuid", "eighteen"], "expected a whole number"),
    "no such subnet id": (["set", "netuid", "304250263527210"], "expected a whole number ≤ 65535"),
    "past the column": (["set", "cost_per_answer", str(2**31)], "expected a whole number ≤ 2147483647"),
    "not a boolean": (["set", "rate_limiting_enabled", "maybe"], "expected true or false"),
    "bad rate limits": (["set", "global_rate_limits", "10/minute"], "expected a JSON list"),
    "bad strategy": (["set", "default_strategy", "fastest"], "strategy"),
    "unknown name to get": (["get", "hotkey"], "unknown config name 'hotkey'"),
    "no such network": (["set", "network", "nowhere"], "expected one of finney, test"),
    "timeout above its cap": (["set", "miner_timeout", "100"], "can't be above max_miner_timeout (60s)"),
    "cap below the timeout": (["set", "max_miner_timeout", "5"], "can't be above max_miner_timeout (5s)"),
    "btvep's redis_url": (["set", "redis_url", "redis://elsewhere"], "set the REDIS_URL environment variable"),
}


@pytest.mark.parametrize("args, message", BAD_SETS.values(), ids=BAD_SETS.keys())
def test_bad_config_input_is_refused_and_changes_nothing(db, args, message):
    before = config_row()
    code, out, err = manage("config", *args)
    assert code == 1
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1
    assert out == ""
    assert config_row() == before


def test_unknown_name_exits_1_from_the_shell(postgres):
    before = config_row()
    result = manage_py("config", "set", "no_such_setting", "1")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: unknown config name 'no_such_setting'")
    assert result.stderr.count("\n") == 1
    assert config_row() == before


def test_networks_by_name_or_address_are_taken(db):
    for network in ("finney", "test", "local", "wss://entrypoint-finney.opentensor.ai:443", "ws://127.0.0.1:9944"):
        assert manage("config", "set", "network", network)[:2] == (0, f"network = {network}\n")


def test_timeouts_may_rise_together_when_the_cap_goes_first(db):
    assert manage("config", "set", "max_miner_timeout", "120")[0] == 0
    assert manage("config", "set", "miner_timeout", "100")[:2] == (0, "miner_timeout = 100.0\n")


def test_help_lists_every_setting_with_its_meaning_and_values(postgres):
    for args in (["--help"], ["set", "--help"]):
        result = manage_py("config", *args)
        assert result.returncode == 0, result.stderr
        for name, field in FIELDS.items():
            line = next(line for line in result.stdout.splitlines() if line.strip().startswith(name + " "))
            assert field.help in line
    assert "finney, test" in FIELDS["network"].help and "max_miner_timeout" in FIELDS["miner_timeout"].help


@pytest.mark.parametrize("command", ["config", "key", "logs", "ratelimit", "start"])
def test_every_operator_command_prints_the_projects_version(postgres, command):
    result = manage_py(command, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"validator-endpoint {VERSION} (Django ")
