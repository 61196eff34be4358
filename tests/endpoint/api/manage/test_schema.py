"""The OpenAPI schema documents every management route with its request and
response bodies, so scripts can be generated from it."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


ROUTES = {
    "/api/admin/keys/": {"get", "post"},
    "/api/admin/keys/{query}/": {"get", "patch", "delete"},
    "/api/admin/keys/{query}/credits/": {"post"},
    "/api/admin/logs/": {"get"},
    "/api/admin/logs/{id}/": {"get"},
    "/api/admin/logs/count/": {"get"},
    "/api/admin/stats/": {"get"},
    "/api/admin/config/": {"get", "patch"},
    "/api/admin/ratelimits/": {"get", "patch"},
    "/api/admin/ratelimits/rules/": {"get", "post"},
    "/api/admin/ratelimits/rules/{index}/": {"delete"},
    "/api/admin/subnets/": {"get", "post"},
    "/api/admin/subnets/{slug}/": {"get", "patch", "delete"},
    "/api/keys/": {"get", "post"},
    "/api/keys/{id}/": {"get", "delete"},
}


def test_every_route_and_method_is_listed(schema):
    paths = {path: set(ops) - {"parameters"} for path, ops in schema["paths"].items() if path.startswith("/api/")}
    for path, methods in ROUTES.items():
        assert paths.get(path) == methods, path


def test_writes_document_their_request_bodies_and_answers(schema):
    for path, methods in ROUTES.items():
        for method in methods:
            operation = schema["paths"][path][method]
            if method in ("post", "patch"):
                assert "requestBody" in operation, (method, path)
            answers = operation["responses"]
            if method == "delete":
                assert set(answers) & {"200", "204"}, (method, path)
            else:
                ok = answers.get("200") or answers.get("201")
                assert ok and "content" in ok, (method, path)


def test_the_created_key_is_documented_with_its_one_time_secret(schema):
    created = schema["paths"]["/api/admin/keys/"]["post"]["responses"]["201"]["content"]["application/json"]
    component = created["schema"]["$ref"].rsplit("/", 1)[1]
    assert "key" in schema["components"]["schemas"][component]["properties"]


def test_log_filters_are_documented(schema):
    names = {p["name"] for p in schema["paths"]["/api/admin/logs/"]["get"]["parameters"]}
    assert {"key", "responder_hotkey", "uid", "success", "error_code", "route", "start", "end", "cursor"} <= names
