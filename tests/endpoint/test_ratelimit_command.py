"""`manage.py ratelimit` as an operator uses it: global and per-key rules,
switching limits on and off, and bad input that changes nothing."""

from __future__ import annotations

import pytest

from endpoint.core.config import runtime_config
from endpoint.core.models import EndpointConfig
from endpoint.ratelimits import rules_for
from tests.commands import manage
from tests.factories import ApiKeyFactory


def global_rules() -> list[dict]:
    return EndpointConfig.load().global_rate_limits


def table_rows(out: str) -> list[list[str]]:
    """The cells of each data row of a rich table."""
    rows = []
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[0].isdigit():
            rows.append(cells)
    return rows


def test_global_rules_are_added_listed_and_deleted(db):
    assert manage("ratelimit", "add", "10", "60") == (
        0,
        "Added 10 requests per 60 seconds to the global rules (index 0).\n",
        "",
    )
    assert manage("ratelimit", "add", "100", "3600")[0] == 0
    assert global_rules() == [{"times": 10, "seconds": 60}, {"times": 100, "seconds": 3600}]

    code, out, _ = manage("ratelimit", "list")
    assert code == 0
    assert "Global rate limits" in out
    assert table_rows(out) == [["0", "10", "60", "global"], ["1", "100", "3600", "global"]]

    code, out, _ = manage("ratelimit", "delete", "0")
    assert (code, out) == (0, "Deleted 10 requests per 60 seconds from the global rules.\n")
    assert global_rules() == [{"times": 100, "seconds": 3600}]


def test_a_keys_own_rules_are_managed_by_id_or_prefix(db):
    key = ApiKeyFactory()
    manage("ratelimit", "add", "1000", "60")

    code, out, _ = manage("ratelimit", "-k", str(key.pk), "list")
    assert code == 0
    assert "has no rules of its own; the global ones apply" in out
    assert table_rows(out) == [["0", "1000", "60", "global"]]

    code, out, err = manage("ratelimit", "-k", key.prefix, "add", "5", "1")
    assert code == 0, err
    assert out == f"Added 5 requests per 1 seconds to key {key.pk} ({key.prefix}…) (index 0).\n"
    assert manage("ratelimit", "add", "-k", str(key.pk), "50", "60")[0] == 0  # -k after the action too

    key.refresh_from_db()
    assert key.rate_limits == [{"times": 5, "seconds": 1}, {"times": 50, "seconds": 60}]
    assert global_rules() == [{"times": 1000, "seconds": 60}]
    code, out, _ = manage("ratelimit", "-k", key.prefix, "list")
    own = f"key {key.pk} ({key.prefix}…)"
    assert table_rows(out) == [["0", "5", "1", own], ["1", "50", "60", own]]
    assert f"Rate limits of key {key.pk}" in out

    assert manage("ratelimit", "-k", str(key.pk), "delete", "1")[0] == 0
    key.refresh_from_db()
    assert key.rate_limits == [{"times": 5, "seconds": 1}]


def test_enable_disable_and_status(db, settings):
    settings.REDIS_URL = ""
    assert manage("ratelimit", "enable") == (0, "Rate limiting enabled.\n", "")
    assert EndpointConfig.load().rate_limiting_enabled is True
    code, out, _ = manage("ratelimit", "status")
    assert code == 0
    assert out.splitlines()[0] == "Rate limiting is enabled."

    assert manage("ratelimit", "disable") == (0, "Rate limiting disabled.\n", "")
    assert EndpointConfig.load().rate_limiting_enabled is False
    assert manage("ratelimit", "status")[1].splitlines()[0] == "Rate limiting is disabled."
    assert "not enforced" in manage("ratelimit", "list")[1]


def test_status_says_whether_redis_answers(db, redis_url, settings):
    code, out, _ = manage("ratelimit", "status")
    assert code == 0
    assert "answers" in out.splitlines()[1]

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    code, out, _ = manage("ratelimit", "status")
    assert code == 0
    assert "unreachable" in out and "served without limits" in out


def test_cli_edits_take_effect_without_a_restart(db):
    manage("ratelimit", "enable")
    assert rules_for([], runtime_config()) == []
    manage("ratelimit", "add", "7", "60")
    assert rules_for([], runtime_config()) == [(7, 60)]

    key = ApiKeyFactory()
    manage("ratelimit", "-k", str(key.pk), "add", "2", "1")
    key.refresh_from_db()
    assert rules_for(key.rate_limits, runtime_config()) == [(2, 1)]

    manage("ratelimit", "disable")
    assert rules_for(key.rate_limits, runtime_config()) == []


BAD_INPUT = {
    "index out of range": (["delete", "5"], "no rate limit at index 5"),
    "negative index": (["delete", "-1"], "INDEX must be at least 0"),
    "index not a number": (["delete", "first"], "INDEX must be a whole number"),
    "times 0": (["add", "0", "60"], "TIMES must be at least 1"),
    "seconds 0": (["add", "10", "0"], "SECONDS must be at least 1"),
    "times not a number": (["add", "ten", "60"], "TIMES must be a whole number"),
    "unknown key": (["-k", "999999", "add", "1", "1"], "no API key matches '999999'"),
    "key on enable": (["-k", "1", "enable"], "-k/--key applies to add, delete and list"),
    "key without own rules": (["-k", "{key}", "delete", "0"], "has no rate limits of its own"),
}


@pytest.mark.parametrize("args, message", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_line_exit_1_and_changes_nothing(db, args, message):
    key = ApiKeyFactory()
    manage("ratelimit", "add", "10", "60")
    before = (global_rules(), EndpointConfig.load().rate_limiting_enabled, key.rate_limits)

    code, out, err = manage("ratelimit", *[a.format(key=key.pk) for a in args])
    assert code == 1
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1
    assert out == ""
    key.refresh_from_db()
    assert (global_rules(), EndpointConfig.load().rate_limiting_enabled, key.rate_limits) == before


def test_btvep_set_redis_url_points_at_the_environment(db):
    code, out, err = manage("ratelimit", "set-redis-url", "redis://:hunter2@cache:6379/0")
    assert code == 1 and out == ""
    assert err.startswith("Error: the Redis URL is not a runtime setting here: set the REDIS_URL environment")
    assert "hunter2" not in err
