"""/v1 against what OpenAI's SDKs expect of OpenAI: ``param`` in every error,
``x-request-id`` / ``openai-processing-ms`` / ``x-should-retry`` on every
answer, GET /v1/models/{id}, JSON for unknown routes and wrong methods, and a
miner_path signed exactly as it is sent."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from endpoint.asgi import retry_can_help
from endpoint.core.config import do_set_config, normalize_miner_path
from endpoint.core.errors import ConfigError
from endpoint.core.models import EndpointConfig
from endpoint.network.localnet import LocalSubnet
from endpoint.network.metagraph import forget_directory, sync_metagraph
from endpoint.network.minerstats import miner_book
from logs.models import Request
from tests.commands import manage
from tests.openai_spec_check import spec_error

from .test_openai import HELLO, client

pytestmark = pytest.mark.django_db(transaction=True)


def auth(key) -> dict[str, str]:
    return {"Authorization": f"Bearer {key.raw}"}


def assert_matches_spec(body: object, schema: str) -> None:
    """``body`` is valid as OpenAI's own schema ``schema`` (with its $refs)."""
    why = spec_error(body, schema)
    assert why is None, f"not OpenAI's {schema}: {why}"


def assert_openai_error(body: dict, code: str, param: str | None = None) -> None:
    assert_matches_spec(body, "ErrorResponse")
    error = body["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert error["code"] == code and error["param"] == param
    assert isinstance(error["message"], str) and isinstance(error["type"], str)


# --- GET /v1/models/{model} -------------------------------------------------------


def test_models_match_openais_schemas(live_server_url, key, network):
    listed = httpx.get(live_server_url + "/v1/models", headers=auth(key))
    assert_matches_spec(listed.json(), "ListModelsResponse")
    one = httpx.get(live_server_url + "/v1/models/best:3", headers=auth(key))
    assert_matches_spec(one.json(), "Model")
    assert one.json() in listed.json()["data"]


def test_retrieve_answers_a_model_of_the_list(live_server_url, key, network):
    api = client(live_server_url, key.raw)
    listed = {m.id: m for m in api.models.list()}
    for name in ("auto", "best:3", "top_n:1", "uid:3"):
        model = api.models.retrieve(name)
        assert model == listed[name]
        assert (model.object, model.owned_by) == ("model", "bittensor")


def test_retrieve_an_unknown_model_is_model_not_found(live_server_url, key, network):
    with pytest.raises(openai.NotFoundError) as info:
        client(live_server_url, key.raw).models.retrieve("gpt-4o")
    assert info.value.code == "model_not_found" and info.value.param == "model"
    assert info.value.response.headers["x-should-retry"] == "false"
    assert_openai_error(info.value.response.json(), "model_not_found", "model")


def test_retrieve_needs_a_key(live_server_url, network):
    with pytest.raises(openai.AuthenticationError):
        client(live_server_url, "vep_wrong").models.retrieve("auto")


# --- param ------------------------------------------------------------------------


def test_a_bad_body_names_the_field_in_param(live_server_url, key, network):
    api = client(live_server_url, key.raw)
    with pytest.raises(openai.BadRequestError) as info:
        api.chat.completions.create(model="auto", messages=[])
    assert info.value.param == "messages"
    with pytest.raises(openai.BadRequestError) as info:
        api.chat.completions.create(model="auto", messages=[{"role": "robot", "content": "hi"}])
    assert info.value.param == "messages[0].role"
    assert_openai_error(info.value.response.json(), "InvalidRequestBody", "messages[0].role")


def test_errors_without_a_field_have_a_null_param(live_server_url, key, network):
    url = live_server_url + "/v1/chat/completions"
    r = httpx.post(url, json=HELLO, headers=auth(key))  # a list, not an object
    assert r.status_code == 400
    assert_openai_error(r.json(), "InvalidRequestBody")
    r = httpx.post(url, json={"model": "auto", "messages": HELLO})
    assert r.status_code == 401
    assert_openai_error(r.json(), "APIKeyMissing")
    r = httpx.post(url, json={"model": "gpt-4o", "messages": HELLO}, headers=auth(key))
    assert r.status_code == 404
    assert_openai_error(r.json(), "model_not_found", "model")


def test_a_too_large_body_has_param_too(live_server_url, key, network, settings):
    r = httpx.post(
        live_server_url + "/v1/chat/completions",
        content=b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
        headers={**auth(key), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert_openai_error(r.json(), "PayloadTooLarge")


# --- unknown routes and wrong methods ----------------------------------------------


def test_an_unknown_v1_route_answers_openai_json(live_server_url, key, network):
    r = httpx.get(live_server_url + "/v1/nothing/here", headers=auth(key))
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert_openai_error(r.json(), "not_found")
    assert r.headers["x-should-retry"] == "false" and r.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("POST", "/v1/models", "GET"), ("GET", "/v1/chat/completions", "POST"), ("DELETE", "/v1/models/auto", "GET")],
)
def test_a_wrong_method_answers_405_in_openai_json(live_server_url, key, network, method, path, allowed):
    r = httpx.request(method, live_server_url + path, headers=auth(key))
    assert r.status_code == 405
    assert_openai_error(r.json(), "method_not_allowed")
    assert allowed in r.headers["allow"] and "OPTIONS" in r.headers["allow"]
    assert r.headers["x-should-retry"] == "false"


# --- x-request-id and openai-processing-ms -----------------------------------------


def test_x_request_id_is_the_request_log_id(live_server_url, key, network):
    r = httpx.post(
        live_server_url + "/v1/chat/completions", json={"model": "uid:0", "messages": HELLO}, headers=auth(key)
    )
    assert r.status_code == 200
    request_id = r.headers["x-request-id"]
    assert request_id.startswith("req_")
    entry = Request.objects.get(id=uuid.UUID(request_id.removeprefix("req_")))
    assert r.json()["id"] == f"chatcmpl-{entry.id.hex}"
    assert int(r.headers["openai-processing-ms"]) >= 0
    assert "x-should-retry" not in r.headers


def test_a_stream_names_its_request_log_too(live_server_url, key, network):
    body = {"model": "uid:1", "messages": HELLO, "stream": True}
    url = live_server_url + "/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=auth(key)) as r:
        request_id = r.headers["x-request-id"]
        lines = [line for line in r.iter_lines() if line]
    log_id = uuid.UUID(request_id.removeprefix("req_"))
    assert f'"id":"chatcmpl-{log_id.hex}"' in lines[0]
    assert "x-should-retry" not in r.headers and "openai-processing-ms" in r.headers


def test_an_error_is_logged_under_its_x_request_id(live_server_url, network):
    r = httpx.post(live_server_url + "/v1/chat/completions", json={"model": "auto", "messages": HELLO})
    assert r.status_code == 401
    entry = Request.objects.get(id=uuid.UUID(r.headers["x-request-id"].removeprefix("req_")))
    assert entry.api_error == "APIKeyMissing"


def test_the_sdk_exposes_the_request_id(live_server_url, key, network):
    raw = client(live_server_url, key.raw).models.with_raw_response.list()
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse().data


# --- x-should-retry ----------------------------------------------------------------


def test_the_sdk_does_not_retry_when_all_miners_failed(live_server_url, key, network):
    network.set_behaviour([0, 1], mode="error")
    api = openai.OpenAI(base_url=live_server_url + "/v1", api_key=key.raw, timeout=20)  # default max_retries=2
    assert api.max_retries == 2
    with pytest.raises(openai.InternalServerError) as info:
        api.chat.completions.create(model="uids:0,1", messages=HELLO)
    assert info.value.response.headers["x-should-retry"] == "false"
    assert_matches_spec(info.value.response.json(), "ErrorResponse")
    assert Request.objects.count() == 1


def test_the_sdk_does_not_retry_a_bad_key_or_missing_credits(live_server_url, network):
    from keys.services import do_create_key

    broke = do_create_key(name="broke", credits=0)
    api = openai.OpenAI(base_url=live_server_url + "/v1", api_key=broke.raw, timeout=20)
    with pytest.raises(openai.APIStatusError) as info:
        api.chat.completions.create(model="auto", messages=HELLO)
    assert info.value.status_code == 402
    assert info.value.body["type"] == "insufficient_quota" and info.value.code == "APIKeyNotEnoughCredits"
    assert info.value.response.headers["x-should-retry"] == "false"
    assert Request.objects.count() == 1


@pytest.mark.parametrize(
    ("status", "can_help"),
    [(200, True), (400, False), (401, False), (402, False), (404, False), (405, False), (413, False)]
    + [(408, True), (409, True), (429, True), (500, True), (502, False), (503, True)],
)
def test_which_answers_say_a_retry_cannot_help(status, can_help):
    assert retry_can_help(status) is can_help


# --- miner_path: signed exactly as sent ---------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("/v1/chat/completions", "/v1/chat/completions"),
        (" /%7Eminer/v1/chat/completions ", "/~miner/v1/chat/completions"),
        ("/v1/chat/completions?", "/v1/chat/completions"),
        ("/a/../v1/chat/completions?tag=x", "/v1/chat/completions?tag=x"),
    ],
)
def test_miner_path_is_stored_as_it_goes_on_the_wire(db, given, stored):
    assert normalize_miner_path(given) == stored
    do_set_config("miner_path", given)
    assert EndpointConfig.load().miner_path == stored


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("/v1/chat completions", "printable ASCII"),
        ("/v1/chät/completions", "printable ASCII"),
        ("/v1/chat/completions#top", "#fragment"),
        ("/v1%2Fchat/completions", "percent-escapes"),
        ("/v1/chat/completions?q=a+b", "percent-escapes"),
        ("@attacker.example/x", "must start with '/'"),
    ],
)
def test_miner_path_that_cannot_be_sent_as_written_is_refused(db, given, why):
    with pytest.raises(ConfigError, match=why):
        normalize_miner_path(given)
    code, _, err = manage("config", "set", "miner_path", given)
    assert code == 1 and why in err
    assert EndpointConfig.load().miner_path == "/v1/chat/completions"


@pytest.fixture
def tilde_subnet(transactional_db, validator_mnemonic):
    """Two localnet miners serving on a path with a tilde; they verify btauth/1."""
    with LocalSubnet(2, path="/~miner/v1/chat/completions") as running:
        miner_book().clear()
        do_set_config("network", "local")
        do_set_config("hotkey_mnemonic", validator_mnemonic)
        forget_directory()
        sync_metagraph(snapshot=running.snapshot())
        yield running
        forget_directory()


def test_a_normalised_miner_path_with_a_query_verifies_at_the_miner(live_server_url, tilde_subnet):
    from keys.services import do_create_key

    key = do_create_key(name="tilde", credits=10)
    code, out, err = manage("config", "set", "miner_path", "/%7Eminer/v1/chat/completions?tag=a,b")
    assert code == 0, err
    assert "/~miner/v1/chat/completions?tag=a,b" in out
    completion = client(live_server_url, key.raw).chat.completions.create(model="uid:1", messages=HELLO)
    assert completion.choices[0].message.content == "Miner 1 heard: What is 1+1?"
    (seen,) = tilde_subnet.miners[1].seen
    assert seen.caller_hotkey is not None and seen.auth_error is None  # the miner verified our signature


def test_a_path_stored_before_normalising_is_signed_as_sent(live_server_url, tilde_subnet):
    """A row written before miner_path was checked: the client sends "%7E" as
    "~", so that is what must be signed."""
    from keys.services import do_create_key

    key = do_create_key(name="old-row", credits=10)
    row = EndpointConfig.load()
    row.miner_path = "/%7Eminer/v1/chat/completions"
    row.save()
    completion = client(live_server_url, key.raw).chat.completions.create(model="uid:0", messages=HELLO)
    assert completion.choices[0].message.content == "Miner 0 heard: What is 1+1?"
    (seen,) = tilde_subnet.miners[0].seen
    assert seen.auth_error is None


def test_an_operator_finds_a_call_by_its_x_request_id(live_server_url, key, network, console):
    headers = {**auth(key), "X-Request-Id": "client-picked"}  # another call, with the client's own id
    httpx.post(live_server_url + "/v1/chat/completions", json={"model": "uid:0", "messages": HELLO}, headers=headers)
    r = httpx.post(
        live_server_url + "/v1/chat/completions", json={"model": "uid:2", "messages": HELLO}, headers=auth(key)
    )
    wanted = Request.objects.get(id=uuid.UUID(r.headers["x-request-id"].removeprefix("req_")))
    page = console.get("/admin/logs/request/", {"q": r.headers["x-request-id"]})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [wanted]
    assert console.get("/admin/logs/request/", {"q": "1+1"}).context["cl"].result_count == 2
