"""`manage.py logs`: the newest request logs, filtered the way an operator
asks (by key, by the miner that answered, by time, by count)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from logs.queries import filter_requests
from tests.commands import manage
from tests.factories import ApiKeyFactory, MinerResponseFactory, RequestLogFactory

HOTKEY_A = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
HOTKEY_B = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"


def logged(prompt: str, *, at: datetime, key=None, answered_by: str | None = None, failed_by: str | None = None):
    """A /chat call asking ``prompt``; answered by one hotkey, failed by another."""
    request = RequestLogFactory(
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}],
        started_at=at,
        **({"key": key} if key else {}),
    )
    if answered_by:
        MinerResponseFactory(request=request, hotkey=answered_by, is_success=True, uid=3)
    if failed_by:
        MinerResponseFactory(request=request, hotkey=failed_by, is_success=False, uid=4, error="timeout")
    return request


def prompts_shown(*args: str) -> list[str]:
    code, out, err = manage("logs", *args)
    assert code == 0, err
    return [word for word in out.split() if word.startswith("prompt-")]


@pytest.fixture
def history(db):
    """Four calls over three days by two keys and two miners."""
    alice, bob = ApiKeyFactory(name="alice"), ApiKeyFactory(name="bob")
    logged("prompt-1", at=datetime(2030, 1, 1, 9, tzinfo=UTC), key=alice, answered_by=HOTKEY_A)
    logged("prompt-2", at=datetime(2030, 1, 2, 9, tzinfo=UTC), key=bob, answered_by=HOTKEY_B, failed_by=HOTKEY_A)
    logged("prompt-3", at=datetime(2030, 1, 2, 18, tzinfo=UTC), key=alice, answered_by=HOTKEY_B)
    logged("prompt-4", at=datetime(2030, 1, 3, 9, tzinfo=UTC), key=bob, answered_by=HOTKEY_A)
    return alice, bob


def test_shows_newest_first_with_the_details_of_each_call(history):
    code, out, _ = manage("logs")
    assert code == 0
    assert prompts_shown() == ["prompt-4", "prompt-3", "prompt-2", "prompt-1"]
    row = next(line for line in out.splitlines() if "prompt-2" in line)
    for shown in ("2030-01-02 09:00:00", "/chat", "200", history[1].prefix, "uids:0", f"3/{HOTKEY_B}"):
        assert shown in row
    assert "be brief" not in out  # the user's prompt, not the system message
    assert f"4/{HOTKEY_A}" not in out  # failed miners are not responders


def test_filter_by_key_prefix_id_or_full_key(history):
    alice, bob = history
    assert prompts_shown("-k", alice.prefix) == ["prompt-3", "prompt-1"]
    assert prompts_shown("-k", str(bob.pk)) == ["prompt-4", "prompt-2"]
    assert prompts_shown("--key", alice.raw) == ["prompt-3", "prompt-1"]


def test_filter_by_responder_hotkey_counts_only_successful_answers(history):
    assert prompts_shown("-r", HOTKEY_A) == ["prompt-4", "prompt-1"]  # prompt-2: HOTKEY_A failed
    assert prompts_shown("-r", HOTKEY_B) == ["prompt-3", "prompt-2"]


def test_filter_by_our_request_id_or_the_clients(history):
    mine = logged("prompt-mine", at=datetime(2030, 1, 4, 9, tzinfo=UTC))
    RequestLogFactory(messages=[{"role": "user", "content": "prompt-theirs"}], client_request_id="batch-42")
    assert prompts_shown("-i", f"req_{mine.id.hex}") == ["prompt-mine"]
    assert prompts_shown("--request-id", str(mine.id)) == ["prompt-mine"]
    assert prompts_shown("-i", "batch-42") == ["prompt-theirs"]
    assert prompts_shown("-i", "req_" + "0" * 32) == []


def test_filter_by_time_range(history):
    assert prompts_shown("-s", "2030-01-02") == ["prompt-4", "prompt-3", "prompt-2"]
    assert prompts_shown("-e", "2030-01-02") == ["prompt-3", "prompt-2", "prompt-1"]  # a date: that whole day
    assert prompts_shown("-s", "2030-01-02T12:00:00", "-e", "2030-01-03 00:00:00") == ["prompt-3"]
    assert prompts_shown("-s", "2030-01-02", "-e", "2030-01-02") == ["prompt-3", "prompt-2"]


def test_time_range_in_english_counts_back_from_now(db):
    now = datetime.now(UTC)
    logged("prompt-last-week", at=now - timedelta(days=7))
    logged("prompt-this-morning", at=now - timedelta(hours=5))
    logged("prompt-just-now", at=now - timedelta(minutes=5))
    assert prompts_shown("-s", "yesterday", "-e", "1 hour ago") == ["prompt-this-morning"]
    assert prompts_shown("-s", "2 days ago") == ["prompt-just-now", "prompt-this-morning"]


def test_lines_limits_to_the_newest(history):
    assert prompts_shown("-l", "2") == ["prompt-4", "prompt-3"]


def test_filters_combine(history):
    alice, _ = history
    assert prompts_shown("-k", alice.prefix, "-r", HOTKEY_B, "-s", "2030-01-02") == ["prompt-3"]


def test_nothing_matching_says_so(history):
    code, out, _ = manage("logs", "-s", "2031-01-01")
    assert code == 0
    assert out == "No requests match.\n"


def test_long_prompts_are_truncated_and_deleted_keys_shown_blank(db):
    request = logged("prompt-" + "x" * 200, at=datetime(2030, 1, 1, tzinfo=UTC))
    request.key.delete()
    code, out, _ = manage("logs")
    assert code == 0
    assert "x" * 60 not in out and "…" in out


def test_queries_do_not_grow_with_rows(db, django_assert_max_num_queries):
    start = datetime(2030, 1, 1, tzinfo=UTC)
    for n in range(30):
        logged(f"prompt-{n}", at=start + timedelta(minutes=n), answered_by=HOTKEY_A, failed_by=HOTKEY_B)
    with django_assert_max_num_queries(2):
        rows = list(filter_requests(lines=30))
        assert all(len(row.responders) == 1 and row.key.prefix for row in rows)
    with django_assert_max_num_queries(3):
        assert manage("logs", "-r", HOTKEY_A)[0] == 0


BAD_INPUT = {
    "bad start": (["-s", "whenever"], "-s/--start 'whenever' is not a time"),
    "bad end": (["-e", "2030-13-01"], "-e/--end '2030-13-01' is not a time"),
    "bad lines": (["-l", "0"], "-l/--lines must be a whole number of at least 1"),
    "unknown key": (["-k", "vep_nope"], "no API key matches 'vep_nope'"),
}


@pytest.mark.parametrize("args, message", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_error_line_and_exit_1(history, args, message):
    code, out, err = manage("logs", *args)
    assert code == 1
    assert err.startswith(f"Error: {message}") and err.count("\n") == 1
    assert out == ""
