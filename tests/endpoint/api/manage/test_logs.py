"""/api/admin/logs/: the request log with the CLI's filters and more,
newest first, in cursor pages that cost the same few queries at any size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from logs.models import MinerResponse, Request
from tests.commands import manage
from tests.factories import ApiKeyFactory, MinerResponseFactory, RequestLogFactory

HOTKEY_A = "5" + "A" * 47
HOTKEY_B = "5" + "B" * 47


@pytest.fixture
def traffic(db):
    """A small day of traffic: two keys, two miners, one failure, one 402."""
    now = timezone.now()
    acme, beta = ApiKeyFactory(name="acme"), ApiKeyFactory(name="beta")
    ok_a = RequestLogFactory(key=acme, started_at=now - timedelta(hours=1), prompt_tokens=9, completion_tokens=8)
    MinerResponseFactory(request=ok_a, uid=1, hotkey=HOTKEY_A, is_success=True)
    ok_b = RequestLogFactory(key=beta, started_at=now - timedelta(hours=2), route="/v1/chat/completions")
    MinerResponseFactory(request=ok_b, uid=2, hotkey=HOTKEY_B, is_success=True)
    MinerResponseFactory(request=ok_b, uid=1, hotkey=HOTKEY_A, is_success=False, error="timeout")
    failed = RequestLogFactory(key=acme, started_at=now - timedelta(days=2), status=502, api_error="AllMinersFailed")
    MinerResponseFactory(request=failed, uid=2, hotkey=HOTKEY_B, is_success=False, error="reset")
    poor = RequestLogFactory(key=beta, started_at=now - timedelta(days=3), status=402, credits_charged=0)
    poor.api_error = "APIKeyNotEnoughCredits"
    poor.save()
    return {"acme": acme, "beta": beta, "ok_a": ok_a, "ok_b": ok_b, "failed": failed, "poor": poor, "now": now}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_list_shows_newest_first_with_key_prompt_and_responders(admin_api, traffic):
    r = admin_api.get("/api/admin/logs/")
    rows = r.json()["results"]
    assert [row["id"] for row in rows] == [str(traffic[n].pk) for n in ("ok_a", "ok_b", "failed", "poor")]
    first = rows[0]
    assert (first["key_prefix"], first["prompt"], first["status"]) == (traffic["acme"].prefix, "What is 1+1?", 200)
    assert (first["prompt_tokens"], first["completion_tokens"]) == (9, 8)
    assert rows[2]["prompt_tokens"] is None  # nothing was answered
    assert first["responders"] == [{"uid": 1, "hotkey": HOTKEY_A, "response_ms": 80.0}]
    assert rows[1]["responders"] == [{"uid": 2, "hotkey": HOTKEY_B, "response_ms": 80.0}]  # the failure isn't one


def test_filters(admin_api, traffic):
    t = {name: str(row.pk) for name, row in traffic.items() if isinstance(row, Request)}

    def get(**params):
        return set(ids(admin_api.get("/api/admin/logs/", params)))

    assert get(key=traffic["acme"].pk) == {t["ok_a"], t["failed"]}
    assert get(key=traffic["beta"].prefix) == {t["ok_b"], t["poor"]}
    assert get(responder_hotkey=HOTKEY_A) == {t["ok_a"]}  # answered successfully, as `logs -r`
    assert get(uid=2) == {t["ok_b"], t["failed"]}  # queried, whatever the outcome
    assert get(success="true") == {t["ok_a"], t["ok_b"]}
    assert get(success="false") == {t["failed"], t["poor"]}
    assert get(error_code="APIKeyNotEnoughCredits") == {t["poor"]}
    assert get(route="/v1/chat/completions") == {t["ok_b"]}
    assert get(status=502) == {t["failed"]}
    since = (traffic["now"] - timedelta(days=1)).isoformat()
    until = (traffic["now"] - timedelta(minutes=90)).isoformat()
    assert get(start=since) == {t["ok_a"], t["ok_b"]}
    assert get(start=since, end=until) == {t["ok_b"]}
    assert get(key=traffic["acme"].pk, success="false") == {t["failed"]}


def test_bad_filter_values_are_400_naming_the_filter(admin_api, traffic):
    r = admin_api.get("/api/admin/logs/", {"uid": "two", "start": "last tuesday"})
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"uid", "start"}


def test_logs_are_found_by_our_request_id_or_the_clients(admin_api, traffic):
    traffic["ok_b"].client_request_id = "job-9/step.2"
    traffic["ok_b"].save()
    wanted = str(traffic["ok_b"].pk)
    rows = admin_api.get("/api/admin/logs/", {"client_request_id": "job-9/step.2"}).json()["results"]
    assert [(row["id"], row["client_request_id"]) for row in rows] == [(wanted, "job-9/step.2")]
    assert ids(admin_api.get("/api/admin/logs/", {"client_request_id": "job-9"})) == []  # exact, not a part
    assert ids(admin_api.get("/api/admin/logs/", {"request_id": "req_" + traffic["ok_b"].pk.hex})) == [wanted]
    assert ids(admin_api.get("/api/admin/logs/", {"request_id": wanted})) == [wanted]
    r = admin_api.get("/api/admin/logs/", {"request_id": "req_nope"})
    assert r.status_code == 400 and set(r.json()["errors"]) == {"request_id"}


def test_count_uses_the_same_filters(admin_api, traffic):
    assert admin_api.get("/api/admin/logs/count/").json() == {"count": 4}
    assert admin_api.get("/api/admin/logs/count/", {"success": "false", "key": traffic["acme"].pk}).json() == {
        "count": 1
    }


def test_detail_has_messages_and_every_miner(admin_api, traffic):
    r = admin_api.get(f"/api/admin/logs/{traffic['ok_b'].pk}/")
    body = r.json()
    assert body["messages"] == [{"role": "user", "content": "What is 1+1?"}]
    assert [(m["uid"], m["is_success"], m["error"]) for m in body["miner_responses"]] == [
        (1, False, "timeout"),
        (2, True, ""),
    ]


def test_the_cli_and_the_api_see_the_same_rows(admin_api, traffic):
    code, out, _ = manage("logs", "-k", str(traffic["acme"].pk))
    assert code == 0
    assert out.count(traffic["acme"].prefix) == len(ids(admin_api.get("/api/admin/logs/", {"key": traffic["acme"].pk})))


def test_cursor_pages_through_ten_thousand_rows_with_a_fixed_number_of_queries(
    admin_api, django_assert_max_num_queries
):
    key = ApiKeyFactory()
    start = timezone.now() - timedelta(days=1)
    rows = Request.objects.bulk_create(
        Request(
            key=key,
            route="/chat",
            status=200 if i % 10 else 502,
            started_at=start + timedelta(seconds=i // 2),  # pairs share a timestamp: ties must not repeat or vanish
            messages=[{"role": "user", "content": f"prompt {i}"}],
        )
        for i in range(10_000)
    )
    MinerResponse.objects.bulk_create(
        MinerResponse(request=row, uid=i % 8, hotkey=f"5hot{i % 8}", is_success=True) for i, row in enumerate(rows)
    )

    seen: list[str] = []
    url, params = "/api/admin/logs/", {"page_size": 200}
    while url:
        # Token, the user's and the groups' permissions, page, responders: the
        # same whatever the page size.
        with django_assert_max_num_queries(5):
            page = admin_api.get(url, params).json()
        seen += [row["id"] for row in page["results"]]
        assert all(len(row["responders"]) == 1 for row in page["results"])
        url, params = page["next"], None
    assert len(seen) == 10_000
    assert len(set(seen)) == 10_000
    newest_first = list(Request.objects.order_by("-started_at", "-id").values_list("id", flat=True))
    assert seen == [str(pk) for pk in newest_first]

    failures = admin_api.get("/api/admin/logs/", {"success": "false", "page_size": 10_000}).json()
    assert len(failures["results"]) == 200  # bounded
    assert admin_api.get("/api/admin/logs/count/", {"success": "false"}).json() == {"count": 1000}
