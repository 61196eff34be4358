"""The OpenAPI schema at /api/schema/ as a client generator reads it: valid
OpenAPI 3.1, every gateway route with every error status of DESIGN §3, and
real answers of the server matching what it documents."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from .conftest import HELLO, bearer

pytestmark = pytest.mark.django_db(transaction=True)

ERRORS = {
    ("/chat", "post"): {"200", "400", "401", "402", "413", "429", "502", "503"},
    ("/v1/chat/completions", "post"): {"200", "400", "401", "402", "404", "413", "429", "502", "503"},
    ("/v1/models", "get"): {"200", "401", "429", "503"},
    ("/health/live", "get"): {"200"},
    ("/health/ready", "get"): {"200", "503"},
    ("/metrics", "get"): {"200", "401"},
}


@pytest.fixture
async def schema(api) -> dict:
    r = await api.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert r.status_code == 200
    return r.json()


def conforms(schema: dict, path: str, method: str, status: int, body) -> None:
    """``body`` is what the schema documents for that answer (raises otherwise)."""
    content = schema["paths"][path][method]["responses"][str(status)]["content"]["application/json"]
    Draft202012Validator({**content["schema"], "components": schema["components"]}).validate(body)


async def test_schema_is_valid_openapi_with_every_route_and_error_status(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.1")
    for (path, method), statuses in ERRORS.items():
        assert set(schema["paths"][path][method]["responses"]) == statuses, path
    chat = schema["paths"]["/chat"]["post"]
    assert chat["security"] == [{"BearerAuth": []}]
    assert list(chat["requestBody"]["content"]) == ["application/json"]
    assert "Retry-After" in chat["responses"]["429"]["headers"]
    assert "APIKeyExpired" in chat["responses"]["401"]["description"]
    assert "text/event-stream" in schema["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]


async def test_request_bodies_are_the_ones_the_views_parse(schema):
    chat = schema["components"]["schemas"]["ChatRequest"]
    assert chat["required"] == ["messages"]
    assert chat["properties"]["messages"]["minItems"] == 1
    assert {"uids", "top_n", "in_parallel", "respond_on_first_success", "timeout"} <= set(chat["properties"])
    role = schema["components"]["schemas"]["Message"]["properties"]["role"]
    if "allOf" in role:  # enums become named components
        role = schema["components"]["schemas"][role["allOf"][0]["$ref"].rsplit("/", 1)[1]]
    assert role["enum"] == ["system", "user", "assistant"]
    completion = schema["components"]["schemas"]["ChatCompletionRequest"]
    assert set(completion["required"]) == {"model", "messages"}


async def test_real_answers_match_the_schema(api, schema, key, network):
    answer = await api.post("/chat", json={"messages": HELLO, "uids": [0, 1]}, headers=bearer(key))
    conforms(schema, "/chat", "post", 200, answer.json())
    missing = await api.post("/chat", json={"messages": HELLO})
    conforms(schema, "/chat", "post", 401, missing.json())
    invalid = await api.post("/chat", json={"messages": []}, headers=bearer(key))
    conforms(schema, "/chat", "post", 400, invalid.json())
    network.set_behaviour([0, 1], mode="error")
    failed = await api.post("/chat", json={"messages": HELLO, "uids": [0, 1]}, headers=bearer(key))
    assert failed.status_code == 502
    conforms(schema, "/chat", "post", 502, failed.json())
    network.reset()

    completion = await api.post("/v1/chat/completions", json={"model": "uid:2", "messages": HELLO}, headers=bearer(key))
    conforms(schema, "/v1/chat/completions", "post", 200, completion.json())
    unknown = await api.post("/v1/chat/completions", json={"model": "gpt-9", "messages": HELLO}, headers=bearer(key))
    conforms(schema, "/v1/chat/completions", "post", 404, unknown.json())
    models = await api.get("/v1/models", headers=bearer(key))
    conforms(schema, "/v1/models", "get", 200, models.json())
    ready = await api.get("/health/ready")
    conforms(schema, "/health/ready", "get", ready.status_code, ready.json())


async def test_swagger_ui_uses_our_own_static_files(api):
    page = await api.get("/api/docs/")
    assert page.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page.text
    assert "cdn.jsdelivr" not in page.text
