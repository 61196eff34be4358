"""What `key create|edit -v` accepts as an expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from keys.expiry import parse_valid_until


def start_of_today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.mark.parametrize("text", ["-1", "never", "false", "Never", " FALSE "])
def test_words_for_no_expiry_give_none(text):
    assert parse_valid_until(text) is None


def test_iso_date_is_midnight_utc():
    assert parse_valid_until("2099-01-01") == datetime(2099, 1, 1, tzinfo=UTC)


def test_iso_datetime_with_offset_is_converted_to_utc():
    assert parse_valid_until("2099-01-01T10:00:00+02:00") == datetime(2099, 1, 1, 8, tzinfo=UTC)


def test_unix_timestamp():
    assert parse_valid_until("4102444800") == datetime(2100, 1, 1, tzinfo=UTC)


def test_relative_phrases_land_at_the_start_of_a_day():
    assert parse_valid_until("tomorrow") == start_of_today() + timedelta(days=1)
    assert parse_valid_until("in 10 days") == start_of_today() + timedelta(days=10)
    assert parse_valid_until("next week") == start_of_today() + timedelta(weeks=1)


def test_in_one_month_is_about_a_month_out_at_midnight():
    expiry = parse_valid_until("in 1 month")
    assert timedelta(days=27) < expiry - datetime.now(UTC) <= timedelta(days=31)
    assert (expiry.hour, expiry.minute, expiry.second) == (0, 0, 0)


@pytest.mark.parametrize("text", ["someday maybe", "31st of Smarch", "vep_notadate"])
def test_unreadable_text_is_refused_with_the_accepted_forms(text):
    with pytest.raises(ValueError, match="cannot read the expiry") as error:
        parse_valid_until(text)
    assert "in 1 month" in str(error.value)


@pytest.mark.parametrize("text", ["2020-01-01", "yesterday", "1000000000"])
def test_past_dates_are_refused(text):
    with pytest.raises(ValueError, match="in the past"):
        parse_valid_until(text)


def test_negative_timestamps_other_than_minus_one_are_refused():
    with pytest.raises(ValueError, match="negative"):
        parse_valid_until("-5")
