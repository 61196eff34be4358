"""Request ids: every gateway answer names its request in ``x-request-id``
(ours, the request log's id), even the body guard's early refusals and the
JSON 404 of /v1 itself; a client's own id is echoed in
``x-client-request-id``, stored on the log and found by the console."""

from __future__ import annotations

import httpx
import pytest

from endpoint.core.request_ids import log_id
from logs.models import Request

from .test_body_limits import call_asgi
from .test_openai import HELLO, client
from .test_openai_conformance import assert_openai_error, auth

pytestmark = pytest.mark.django_db(transaction=True)

COMPLETIONS = "/v1/chat/completions"


def logged(r: httpx.Response) -> Request:
    """The request log the answer's x-request-id names."""
    assert r.headers["x-request-id"].startswith("req_")
    return Request.objects.get(id=log_id(r.headers["x-request-id"]))


def test_the_clients_id_is_echoed_and_stored_and_ours_still_names_the_log(live_server_url, key, network):
    headers = {**auth(key), "X-Request-Id": "trace-42/a.b"}
    r = httpx.post(live_server_url + COMPLETIONS, json={"model": "uid:0", "messages": HELLO}, headers=headers)
    assert r.status_code == 200
    assert r.headers["x-client-request-id"] == "trace-42/a.b"
    entry = logged(r)
    assert entry.client_request_id == "trace-42/a.b"
    assert r.json()["id"] == f"chatcmpl-{entry.id.hex}"


def test_x_client_request_id_wins_and_errors_keep_it_too(live_server_url, network):
    headers = {"X-Client-Request-Id": "openai-style", "X-Request-Id": "other"}
    r = httpx.post(live_server_url + "/chat", json={"messages": HELLO}, headers=headers)
    assert r.status_code == 401
    assert r.headers["x-client-request-id"] == "openai-style"
    entry = logged(r)
    assert (entry.api_error, entry.client_request_id) == ("APIKeyMissing", "openai-style")


def test_the_openai_sdk_gets_its_own_id_back(live_server_url, key, network):
    api = client(live_server_url, key.raw).with_options(default_headers={"X-Client-Request-Id": "sdk-run-7"})
    raw = api.chat.completions.with_raw_response.create(model="uid:1", messages=HELLO)
    completion = raw.parse()
    assert raw.headers["x-client-request-id"] == "sdk-run-7"
    assert completion._request_id == raw.headers["x-request-id"]  # the SDK's view of our id
    assert logged(raw.http_response).client_request_id == "sdk-run-7"


def test_a_stream_keeps_the_clients_id_in_its_final_log(live_server_url, key, network):
    body = {"model": "uid:2", "messages": HELLO, "stream": True}
    headers = {**auth(key), "X-Request-Id": "stream-1"}
    with httpx.stream("POST", live_server_url + COMPLETIONS, json=body, headers=headers) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and r.headers["x-client-request-id"] == "stream-1"
    entry = logged(r)
    assert (entry.status, entry.credits_charged, entry.client_request_id) == (200, 1, "stream-1")


@pytest.mark.parametrize(
    "odd",
    ["x" * 129, "two words", "", "tab\there", "caf\xe9".encode("latin-1")],
    ids=["long", "space", "empty", "tab", "latin1"],
)
def test_an_odd_client_id_is_ignored(live_server_url, key, network, odd):
    r = httpx.post(
        live_server_url + COMPLETIONS,
        json={"model": "uid:0", "messages": HELLO},
        headers={**auth(key), "X-Request-Id": odd},
    )
    assert r.status_code == 200
    assert "x-client-request-id" not in r.headers
    assert logged(r).client_request_id == ""


def test_a_long_id_at_the_limit_is_kept(live_server_url, key, network):
    at_limit = "~" * 128
    r = httpx.get(live_server_url + "/v1/models", headers={**auth(key), "X-Request-Id": at_limit})
    assert r.status_code == 200 and r.headers["x-client-request-id"] == at_limit
    assert logged(r).client_request_id == at_limit


def test_an_operator_finds_a_call_by_either_id(live_server_url, key, network, console):
    url = live_server_url + COMPLETIONS
    mine = httpx.post(url, json={"model": "uid:0", "messages": HELLO}, headers={**auth(key), "X-Request-Id": "job-9"})
    other = httpx.post(url, json={"model": "uid:1", "messages": HELLO}, headers=auth(key))
    wanted, unwanted = logged(mine), logged(other)

    def found(term: str) -> list[Request]:
        page = console.get("/admin/logs/request/", {"q": term})
        assert page.status_code == 200
        return list(page.context["cl"].result_list)

    assert found("job-9") == [wanted]
    assert found(mine.headers["x-request-id"]) == [wanted]
    assert found(str(unwanted.id)) == [unwanted]  # the bare UUID too
    assert found("job") == []  # the client's id matches exactly, not in part
    assert len(found("1+1")) == 2  # the prompts are still searched
    page = console.get(f"/admin/logs/request/{wanted.pk}/change/")
    assert b"job-9" in page.content


# --- answers given before any view ----------------------------------------------------


async def test_the_body_guards_refusals_carry_a_request_id():
    first = await call_asgi(COMPLETIONS, [(b"content-length", b"500000000"), (b"x-request-id", b"big-1")])
    second = await call_asgi("/chat", [(b"content-length", b"lots")])
    (status, headers, body, _), (bad_status, bad_headers, _, _) = first, second
    assert (status, body["error"]["code"], bad_status) == (413, "PayloadTooLarge", 400)
    assert headers[b"x-client-request-id"] == b"big-1" and b"x-client-request-id" not in bad_headers
    ids = {headers[b"x-request-id"], bad_headers[b"x-request-id"]}
    assert len(ids) == 2 and all(log_id(i.decode()) is not None and i.startswith(b"req_") for i in ids)
    assert headers[b"x-should-retry"] == bad_headers[b"x-should-retry"] == b"false"


def test_a_too_large_body_over_http_has_a_request_id(live_server_url, key, network, settings):
    r = httpx.post(
        live_server_url + COMPLETIONS,
        content=b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
        headers={**auth(key), "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.headers["x-request-id"].startswith("req_")
    assert not Request.objects.exists()  # refused before any view: nothing logged


@pytest.mark.parametrize("path", ["/v1", "/v1/"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_v1_itself_answers_openai_json_404(live_server_url, key, network, path, method):
    r = httpx.request(method, live_server_url + path, headers=auth(key))
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert_openai_error(r.json(), "not_found")
    assert r.headers["x-request-id"].startswith("req_") and r.headers["x-should-retry"] == "false"
