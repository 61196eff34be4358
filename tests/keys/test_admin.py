"""API keys in the console: created once and shown once, edited through the
same rules as the CLI, listed fast."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from keys.models import ApiKey, hash_secret
from tests.factories import ApiKeyFactory, UserFactory

KEYS = "/admin/keys/apikey/"
RAW_KEY = re.compile(r"vep_[A-Za-z0-9_\-]{20,}")


def create(console, **fields):
    data = {"name": "", "owner": "", "enabled": "on", "credits": "", "valid_until": "never", "default_strategy": ""}
    data.update({"rate_limits-rows": "0", **fields})
    return console.post(KEYS + "add/", data)


def change(console, key, **fields):
    data = {
        "name": key.name,
        "enabled": "on" if key.enabled else "",
        "credits": "" if key.credits is None else key.credits,
        "valid_until": key.expires_at.isoformat() if key.expires_at else "never",
        "default_strategy": key.default_strategy,
        "rate-limits-rows": "0",
        "rate_limits-rows": "0",
    }
    data.update(fields)
    return console.post(f"{KEYS}{key.pk}/change/", {k: v for k, v in data.items() if v != ""})


def test_created_key_is_shown_once_and_never_again(console, caplog):
    caplog.set_level("DEBUG")
    posted = create(console, name="partner", credits="100", default_strategy="top_n:3")
    assert posted.status_code == 302  # post/redirect/get: a refresh creates nothing
    response = console.get(posted["Location"])

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    shown = RAW_KEY.findall(response.text)
    assert len(set(shown)) == 1
    raw = shown[0]
    key = ApiKey.objects.get(name="partner")
    assert key.secret_hash == hash_secret(raw)
    assert (key.credits, key.default_strategy, key.prefix) == (100, "top_n:3", raw[:8])
    assert 'data-copy-target="new-key"' in response.text
    assert "$VEP_KEY" in response.text  # the curl preview uses a placeholder

    refreshed = console.get(posted["Location"])
    assert refreshed.status_code == 200 and "already shown once" in refreshed.text
    assert not RAW_KEY.search(refreshed.text)
    assert ApiKey.objects.filter(name="partner").count() == 1
    for page in (KEYS, f"{KEYS}{key.pk}/change/", "/admin/"):
        assert raw not in console.get(page).text
    assert raw not in caplog.text


def test_another_session_never_sees_a_new_key(console, operator):
    posted = create(console, name="partner")
    other = Client()
    other.force_login(operator)
    page = other.get(posted["Location"])
    assert "already shown once" in page.text and not RAW_KEY.search(page.text)
    assert RAW_KEY.search(console.get(posted["Location"]).text)


def test_created_key_takes_the_clis_forms(console):
    create(console, name="monthly", credits="-1", valid_until="in 1 month")
    key = ApiKey.objects.get(name="monthly")
    assert key.credits is None
    assert timedelta(days=27) < key.expires_at - timezone.now() < timedelta(days=32)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("default_strategy", "fastest", "strategy"), ("valid_until", "2001-01-01", "in the past"), ("credits", "-5", "")],
)
def test_bad_input_is_refused_with_the_reason(console, field, value, message):
    response = create(console, name="bad", **{field: value})
    assert response.status_code == 200
    assert "errornote" in response.text
    assert message in response.text
    assert not ApiKey.objects.filter(name="bad").exists()
    assert not RAW_KEY.search(response.text)


def test_rate_limit_rules_are_edited_as_rows(console):
    key = ApiKeyFactory(rate_limits=[{"times": 5, "seconds": 1}])
    response = change(
        console,
        key,
        **{
            "rate_limits-rows": "3",
            "rate_limits-0-times": "",  # cleared: dropped
            "rate_limits-0-seconds": "",
            "rate_limits-1-times": "10",
            "rate_limits-1-seconds": "60",
            "rate_limits-2-times": "100",
            "rate_limits-2-seconds": "3600",
        },
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.rate_limits == [{"times": 10, "seconds": 60}, {"times": 100, "seconds": 3600}]


def test_bad_rate_limit_rule_is_shown_and_nothing_saved(console):
    key = ApiKeyFactory(rate_limits=[{"times": 5, "seconds": 1}])
    response = change(
        console, key, **{"rate_limits-rows": "1", "rate_limits-0-times": "0", "rate_limits-0-seconds": "x"}
    )
    assert response.status_code == 200
    assert "Rule 1: requests and seconds must both be whole numbers of at least 1." in response.text
    key.refresh_from_db()
    assert key.rate_limits == [{"times": 5, "seconds": 1}]


def test_editing_keeps_an_expired_key_editable(console):
    key = ApiKeyFactory(expires_at=timezone.now() - timedelta(days=1), default_strategy="")
    response = change(console, key, name="renamed", default_strategy="uids:1,2")
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.default_strategy, key.is_expired) == ("renamed", "uids:1,2", True)


def test_curl_preview_for_a_key_names_both_routes_not_the_secret(console):
    key = ApiKeyFactory(default_strategy="top_n:2")
    page = console.get(f"{KEYS}{key.pk}/change/").text
    assert 'id="curl-preview"' in page
    assert "http://testserver/chat" in page
    assert "http://testserver/v1/chat/completions" in page
    assert "Authorization: Bearer $VEP_KEY" in page
    assert "top_n:2" in page
    assert key.raw not in page


def run_action(console, action, keys, **extra):
    data = {"action": action, "_selected_action": [k.pk for k in keys], **extra}
    return console.post(KEYS, data, follow=True)


def test_enable_and_disable(console):
    keys = [ApiKeyFactory(enabled=True), ApiKeyFactory(enabled=True)]
    response = run_action(console, "disable_keys", keys)
    assert "Disabled 2 keys." in response.text
    assert not ApiKey.objects.filter(enabled=True).exists()
    run_action(console, "enable_keys", keys[:1])
    assert list(ApiKey.objects.filter(enabled=True)) == keys[:1]


def test_add_credits_asks_then_adds_and_reports_unlimited_keys(console):
    limited, unlimited = ApiKeyFactory(credits=10), ApiKeyFactory(credits=None)
    form = run_action(console, "add_credits", [limited, unlimited])
    assert 'name="amount"' in form.text
    assert limited.name in form.text

    done = run_action(console, "add_credits", [limited, unlimited], apply="1", amount="25", reason="top-up")
    limited.refresh_from_db()
    assert limited.credits == 35
    assert "Added +25 credits to 1 key." in done.text
    assert "unlimited credits" in done.text


def test_taking_more_credits_than_left_is_refused(console):
    key = ApiKeyFactory(credits=3)
    response = run_action(console, "add_credits", [key], apply="1", amount="-5")
    key.refresh_from_db()
    assert key.credits == 3
    assert "below zero" in response.text


def test_extend_expiry_takes_the_clis_forms_and_refuses_the_past(console):
    key = ApiKeyFactory(expires_at=timezone.now() + timedelta(days=1))
    refused = run_action(console, "extend_expiry", [key], apply="1", valid_until="last year")
    assert "in the past" in refused.text or "cannot read" in refused.text
    run_action(console, "extend_expiry", [key], apply="1", valid_until="2999-01-01")
    key.refresh_from_db()
    assert key.expires_at.year == 2999
    run_action(console, "extend_expiry", [key], apply="1", valid_until="never")
    key.refresh_from_db()
    assert key.expires_at is None


def names_listed(console, query: str) -> set[str]:
    response = console.get(KEYS + query)
    assert response.status_code == 200
    return {key.name for key in response.context["cl"].result_list}


def test_filters_and_search(console):
    owner = UserFactory(username="alice")
    ApiKeyFactory(name="expired", expires_at=timezone.now() - timedelta(hours=1), credits=5)
    ApiKeyFactory(name="disabled", enabled=False, credits=None)
    ApiKeyFactory(name="alices", owner=owner, credits=None)
    found = ApiKeyFactory(name="plain", credits=1)

    assert names_listed(console, "?expired=yes") == {"expired"}
    assert names_listed(console, "?enabled__exact=0") == {"disabled"}
    assert names_listed(console, "?unlimited=yes") == {"disabled", "alices"}
    assert names_listed(console, f"?owner__id__exact={owner.pk}") == {"alices"}
    assert names_listed(console, f"?q={found.prefix}") == {"plain"}
    assert names_listed(console, "?q=alic") == {"alices"}


@pytest.mark.parametrize("rows", [5, 50])
def test_changelist_queries_do_not_grow_with_rows(console, django_assert_max_num_queries, rows):
    owners = UserFactory.create_batch(3)
    for i in range(rows):
        ApiKeyFactory(owner=owners[i % 3])
    with django_assert_max_num_queries(8):
        response = console.get(KEYS)
    assert len(response.context["cl"].result_list) == rows


def test_deleting_a_key_removes_it(console):
    key = ApiKeyFactory()
    response = console.post(f"{KEYS}{key.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ApiKey.objects.filter(pk=key.pk).exists()


def state_cell(page: str, name: str) -> str:
    row = next(row for row in page.split("<tr") if f">{name}<" in row)
    return re.search(r'<td class="field-state">(.*?)</td>', row).group(1)


def test_an_expired_key_is_marked_expired_not_with_a_green_check(console):
    now = timezone.now()
    ApiKeyFactory(name="old", expires_at=now - timedelta(minutes=1))
    ApiKeyFactory(name="off", enabled=False)
    ApiKeyFactory(name="good", expires_at=now + timedelta(days=1))
    page = console.get(KEYS).text
    assert "icon-no.svg" in state_cell(page, "old") and "expired" in state_cell(page, "old")
    assert "icon-no.svg" in state_cell(page, "off") and "disabled" in state_cell(page, "off")
    assert "icon-yes.svg" in state_cell(page, "good") and "active" in state_cell(page, "good")


def test_key_times_are_shown_to_the_second(console):
    ApiKeyFactory(name="used", last_used_at=timezone.now().replace(hour=9, minute=5, second=7, microsecond=0))
    page = console.get(KEYS).text
    assert re.search(r"\d{4}-\d\d-\d\d 09:05:07", page)


RULE_ROW = re.compile(r'name="rate_limits-(\d+)-times" value="([^"]*)".*?name="rate_limits-\1-seconds" value="([^"]*)"')


def test_rate_limit_rows_stay_as_typed_after_an_error(console):
    """The form comes back with the operator's rows and three blank ones,
    however many times it is sent with a mistake: blank rows never pile up."""
    key = ApiKeyFactory(rate_limits=[{"times": 5, "seconds": 1}])
    shown = [("5", "1"), ("", ""), ("", ""), ("", "")]  # as the change page first shows it
    assert RULE_ROW.findall(console.get(f"{KEYS}{key.pk}/change/").text) == [
        (str(i), *row) for i, row in enumerate(shown)
    ]
    shown[1] = ("0", "60")  # a bad rule typed into the first blank row
    for _ in range(2):
        rows = {
            f"rate_limits-{i}-{part}": value
            for i, row in enumerate(shown)
            for part, value in zip(("times", "seconds"), row, strict=True)
        }
        response = change(console, key, **{"rate_limits-rows": str(len(shown)), **rows})
        assert response.status_code == 200
        assert "Rule 2: requests and seconds must both be whole numbers of at least 1." in response.text
        again = RULE_ROW.findall(response.text)
        assert [(times, seconds) for _, times, seconds in again] == [
            ("5", "1"),
            ("0", "60"),
            ("", ""),
            ("", ""),
            ("", ""),
        ]
        shown = [(times, seconds) for _, times, seconds in again]
    key.refresh_from_db()
    assert key.rate_limits == [{"times": 5, "seconds": 1}]
