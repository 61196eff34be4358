"""`manage.py key create|list|edit|delete` as an operator uses it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from keys.models import PREFIX_LENGTH, ApiKey
from tests.commands import manage, manage_py
from tests.factories import ApiKeyFactory

RAW_KEY = re.compile(r"vep_[A-Za-z0-9_-]{20,}")


def keys_in_db() -> list[dict]:
    return list(ApiKey.objects.order_by("pk").values())


def text_columns_containing(needle: str) -> list[str]:
    """Every text-like column of every table in the database holding ``needle``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() "
            "AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
        )
        columns = cursor.fetchall()
        found = []
        for table, column in columns:
            name = f"{connection.ops.quote_name(table)}.{connection.ops.quote_name(column)}"
            cursor.execute(
                f"SELECT count(*) FROM {connection.ops.quote_name(table)} WHERE strpos({name}::text, %s) > 0",
                [needle],
            )
            if cursor.fetchone()[0]:
                found.append(name)
    return found


# --- create and list -----------------------------------------------------------


def test_create_prints_the_key_once_and_list_shows_its_credits_and_expiry(postgres):
    created = manage_py("key", "create", "-n", "demo", "-c", "100", "-v", "in 1 month")
    assert created.returncode == 0, created.stderr
    raw_keys = RAW_KEY.findall(created.stdout)
    assert len(raw_keys) == 1, created.stdout
    raw = raw_keys[0]

    listed = manage_py("key", "list")
    assert listed.returncode == 0, listed.stderr
    assert raw not in listed.stdout
    row = next(line for line in listed.stdout.splitlines() if " demo " in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert raw[:PREFIX_LENGTH] in cells
    assert "100" in cells
    assert "yes" in cells
    expiry = datetime.strptime(next(cell for cell in cells if cell.endswith("UTC")), "%Y-%m-%d %H:%M:%S UTC").replace(
        tzinfo=UTC
    )
    assert timedelta(days=27) < expiry - datetime.now(UTC) <= timedelta(days=31)
    assert expiry.time() == datetime.min.time()

    # The full key is nowhere at rest: not in the key's row, not in any text
    # column of any table (the secret part after the shown prefix included).
    (stored,) = keys_in_db()
    assert not any(raw in str(value) or raw[PREFIX_LENGTH:] in str(value) for value in stored.values())
    assert text_columns_containing(raw[PREFIX_LENGTH:]) == []
    assert text_columns_containing(raw[:PREFIX_LENGTH]) == ['"keys_apikey"."prefix"']


def test_create_with_defaults_is_an_enabled_unlimited_key_that_never_expires(db):
    code, out, _ = manage("key", "create")
    assert code == 0
    key = ApiKey.objects.get()
    assert (key.enabled, key.credits, key.expires_at) == (True, None, None)
    assert "unlimited" in out and "never" in out


def test_create_disabled_with_strategy(db):
    code, _, err = manage("key", "create", "-n", "batch", "-d", "-s", "top_n:5", "-c", "0")
    assert code == 0, err
    key = ApiKey.objects.get()
    assert (key.name, key.enabled, key.default_strategy, key.credits) == ("batch", False, "top_n:5", 0)


def test_list_shows_every_key_with_owner_and_counters_but_no_secret(db):
    from tests.factories import UserFactory

    alice = UserFactory(username="alice")
    owned = ApiKeyFactory(name="alice's", owner=alice, credits=5, request_count=7, api_request_count=3)
    ApiKeyFactory(name="[b]markup[/b]")
    code, out, _ = manage("key", "list")
    assert code == 0
    assert "alice" in out and "[b]markup[/b]" in out  # names printed as text, not as rich markup
    row = next(line for line in out.splitlines() if "alice's" in line)
    header = next(line for line in out.splitlines() if "prefix" in line)
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")][-2:] == ["API calls", "miner calls"]
    assert [cell.strip() for cell in row.strip("│ ").split("│")][-2:] == ["3", "7"]
    assert owned.raw not in out


def test_list_help_says_what_the_counters_count(postgres):
    from tests.commands import manage_py

    help_text = " ".join(manage_py("key", "list", "--help").stdout.split())
    assert "'API calls' counts the requests made with a key" in help_text
    assert "'miner calls' counts the miners those requests asked" in help_text


def test_list_with_no_keys_says_how_to_make_one(db):
    code, out, _ = manage("key", "list")
    assert code == 0
    assert "key create" in out


# --- edit and delete -----------------------------------------------------------


def test_edit_by_prefix_changes_only_what_is_given(db):
    key = ApiKeyFactory(name="old", credits=10, request_count=42)
    code, out, err = manage("key", "edit", key.prefix, "-n", "new", "-c", "-1", "-r", "-d", "-s", "uids:1,2")
    assert code == 0, err
    key.refresh_from_db()
    assert (key.name, key.credits, key.request_count, key.enabled, key.default_strategy) == (
        "new",
        None,
        0,
        False,
        "uids:1,2",
    )
    assert "unlimited" in out


def test_edit_by_full_key_sets_and_clears_expiry(db):
    key = ApiKeyFactory()
    assert manage("key", "edit", key.raw, "-v", "2099-06-01")[0] == 0
    key.refresh_from_db()
    assert key.expires_at == datetime(2099, 6, 1, tzinfo=UTC)
    assert manage("key", "edit", str(key.pk), "-v", "-1", "-e")[0] == 0
    key.refresh_from_db()
    assert key.expires_at is None and key.enabled


def test_delete_by_id(db):
    keep, gone = ApiKeyFactory(), ApiKeyFactory(name="old one")
    code, out, _ = manage("key", "delete", str(gone.pk))
    assert code == 0
    assert "Deleted" in out and gone.prefix in out
    assert list(ApiKey.objects.values_list("pk", flat=True)) == [keep.pk]


# --- bad input: one line on stderr, exit code 1, nothing changed -----------------


BAD_CREATES = {
    "bad date": (["-v", "someday maybe"], "cannot read the expiry"),
    "date in the past": (["-v", "2020-01-01"], "in the past"),
    "relative date in the past": (["-v", "yesterday"], "in the past"),
    "negative credits": (["-c", "-5"], "credits must be 0 or more, or -1 for unlimited"),
    "credits not a number": (["-c", "lots"], "credits must be a whole number"),
    "unknown strategy": (["-s", "fastest"], "strategy"),
}


@pytest.mark.parametrize("flags, message", BAD_CREATES.values(), ids=BAD_CREATES.keys())
def test_bad_create_input_is_refused_and_creates_nothing(db, flags, message):
    code, out, err = manage("key", "create", "-n", "x", *flags)
    assert code == 1
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1
    assert ApiKey.objects.count() == 0
    assert not RAW_KEY.search(out)


BAD_EDITS = {
    "bad date": (["-v", "the twelfth of never"], "cannot read the expiry"),
    "date in the past": (["-v", "1999-12-31"], "in the past"),
    "negative credits": (["-c", "-2"], "credits must be 0 or more"),
    "nothing to change": ([], "nothing to change"),
    "bad strategy with a good name": (["-n", "renamed", "-s", "top_n:0"], "strategy"),
}


@pytest.mark.parametrize("flags, message", BAD_EDITS.values(), ids=BAD_EDITS.keys())
def test_bad_edit_input_is_refused_and_changes_nothing(db, flags, message):
    key = ApiKeyFactory(name="kept", credits=10)
    before = keys_in_db()
    code, _, err = manage("key", "edit", str(key.pk), *flags)
    assert code == 1
    assert err.startswith("Error: ") and message in err
    assert keys_in_db() == before


@pytest.mark.parametrize("action", [["edit", "-c", "5"], ["delete"]], ids=["edit", "delete"])
def test_unknown_key_is_refused(db, action):
    ApiKeyFactory()
    before = keys_in_db()
    code, _, err = manage("key", action[0], "12345", *action[1:])
    assert code == 1
    assert err == "Error: no API key matches '12345'\n"
    assert keys_in_db() == before


@pytest.mark.parametrize("action", [["edit", "-c", "5"], ["delete"]], ids=["edit", "delete"])
def test_ambiguous_prefix_is_refused(db, action):
    ApiKeyFactory(prefix="vep_dupe", credits=1)
    ApiKeyFactory(prefix="vep_dupe", credits=2)
    before = keys_in_db()
    code, _, err = manage("key", action[0], "vep_dupe", *action[1:])
    assert code == 1
    assert "matches more than one key" in err
    assert keys_in_db() == before


def test_errors_exit_1_with_one_line_on_stderr_from_the_shell(postgres):
    key = ApiKeyFactory(credits=3)
    before = keys_in_db()
    for args, message in [
        (["edit", "999999", "-c", "5"], "Error: no API key matches '999999'"),
        (["edit", str(key.pk), "-v", "last tuesday"], "Error: the expiry 'last tuesday' is in the past"),
        (["create", "-c", "-7"], "Error: credits must be 0 or more, or -1 for unlimited; got -7"),
    ]:
        result = manage_py("key", *args)
        assert result.returncode == 1
        assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert keys_in_db() == before


def test_django_verbosity_still_works_beside_the_expiry_flag(db):
    code, _, err = manage("key", "-v", "0", "create", "-v", "2099-01-01")
    assert code == 0, err
    assert ApiKey.objects.get().expires_at == datetime(2099, 1, 1, tzinfo=UTC)
