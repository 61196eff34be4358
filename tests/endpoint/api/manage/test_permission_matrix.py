"""One permission model on every face: each role against each route and
method of /api/admin/, /api/keys/ and the admin console, one test per cell.

A route lists the roles that may use it; every other role gets the refusal
its face gives: /api/admin/ answers 401 to no user (an API key is no user
there) and 403 to any other; /api/keys/ (session only) answers 403 to no
user; the admin sends a non-staff visitor to its login page and answers 403
to staff without the permission. Writes send valid bodies, so an allowed
call really succeeds, and a refused one must leave the data as it was.

Each cell gets its own small world in a transaction rolled back after it:
cheaper than a shared one it would have to undo, and no cell sees another's
writes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from django.test import Client

from endpoint.core.config import FIELDS, SECRETS
from endpoint.core.models import EndpointConfig, Neuron, Subnet
from endpoint.core.subnets import do_add_subnet, subnet_values
from keys.models import ApiKey
from tests.endpoint.roles import full_staff, make_user, viewer
from tests.factories import ApiKeyFactory, RequestLogFactory

SUPERUSER, FULL_STAFF, VIEWER, BARE_STAFF = "superuser", "full_staff", "viewer", "bare_staff"
USER, ANONYMOUS, API_KEY = "user", "anonymous", "api_key"
ROLES = (SUPERUSER, FULL_STAFF, VIEWER, BARE_STAFF, USER, ANONYMOUS, API_KEY)
STAFF = (SUPERUSER, FULL_STAFF, VIEWER, BARE_STAFF)
SIGNED_IN = (*STAFF, USER)
OPERATORS = (SUPERUSER, FULL_STAFF)  # every model permission
READERS = (*OPERATORS, VIEWER)  # logs, stats and neurons

GLOBAL_RULE = {"times": 100, "seconds": 60}
KEY_RULE = {"times": 5, "seconds": 1}
ATTACKER_URL = "http://attacker.example/v1"


@dataclass(frozen=True)
class Route:
    face: str  # "api" (/api/admin/), "mine" (/api/keys/) or "admin" (the console)
    method: str
    path: str  # {key} {log} {own} {other} are filled from the world
    allowed: tuple[str, ...]
    ok: int  # what an allowed role gets
    body: dict | None = field(default=None, hash=False)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}" + (f" {sorted(self.body)}" if self.body and self.face != "admin" else "")


ROUTES = (
    # --- /api/admin/ ---------------------------------------------------------------
    Route("api", "GET", "/api/admin/keys/", OPERATORS, 200),
    Route("api", "POST", "/api/admin/keys/", OPERATORS, 201, {"name": "matrix", "credits": 10}),
    Route("api", "GET", "/api/admin/keys/{key}/", OPERATORS, 200),
    Route("api", "PATCH", "/api/admin/keys/{key}/", OPERATORS, 200, {"name": "renamed", "enabled": False}),
    Route("api", "DELETE", "/api/admin/keys/{key}/", OPERATORS, 204),
    Route("api", "POST", "/api/admin/keys/{key}/credits/", OPERATORS, 200, {"delta": 1000, "reason": "matrix"}),
    Route("api", "GET", "/api/admin/logs/", READERS, 200),
    Route("api", "GET", "/api/admin/logs/{log}/", READERS, 200),
    Route("api", "GET", "/api/admin/logs/count/", READERS, 200),
    Route("api", "GET", "/api/admin/stats/", READERS, 200),
    Route("api", "GET", "/api/admin/config/", OPERATORS, 200),
    Route("api", "PATCH", "/api/admin/config/", OPERATORS, 200, {"netuid": 7, "rate_limiting_enabled": False}),
    Route("api", "PATCH", "/api/admin/config/", (SUPERUSER,), 200, {"openai_base_url": ATTACKER_URL}),
    Route("api", "PATCH", "/api/admin/config/", (SUPERUSER,), 200, {"openai_api_key": "sk-attacker-0123456789"}),
    Route("api", "PATCH", "/api/admin/config/", (SUPERUSER,), 200, {"metagraph_file": "/etc/passwd"}),
    Route("api", "GET", "/api/admin/ratelimits/", OPERATORS, 200),
    Route("api", "PATCH", "/api/admin/ratelimits/", OPERATORS, 200, {"enabled": False}),
    Route("api", "GET", "/api/admin/ratelimits/rules/", OPERATORS, 200),
    Route("api", "GET", "/api/admin/ratelimits/rules/?key={key}", OPERATORS, 200),
    Route("api", "POST", "/api/admin/ratelimits/rules/", OPERATORS, 201, {"times": 1, "seconds": 1}),
    Route("api", "POST", "/api/admin/ratelimits/rules/", OPERATORS, 201, {"times": 1, "seconds": 1, "key": "{key}"}),
    Route("api", "DELETE", "/api/admin/ratelimits/rules/0/", OPERATORS, 200),
    Route("api", "DELETE", "/api/admin/ratelimits/rules/0/?key={key}", OPERATORS, 200),
    Route("api", "GET", "/api/admin/subnets/", OPERATORS, 200),
    Route("api", "POST", "/api/admin/subnets/", OPERATORS, 201, {"slug": "speech", "name": "Speech", "netuid": 21}),
    Route(
        "api",
        "POST",
        "/api/admin/subnets/",
        (SUPERUSER,),
        201,
        {"slug": "speech", "name": "Speech", "netuid": 21, "network": "wss://attacker.example"},
    ),
    Route("api", "GET", "/api/admin/subnets/images/", OPERATORS, 200),
    Route("api", "PATCH", "/api/admin/subnets/images/", OPERATORS, 200, {"price": 3, "enabled": False}),
    Route("api", "PATCH", "/api/admin/subnets/images/", (SUPERUSER,), 200, {"miner_path": "/v1/steal"}),
    Route("api", "PATCH", "/api/admin/subnets/chat/", OPERATORS, 200, {"price": 3}),
    Route("api", "DELETE", "/api/admin/subnets/images/", OPERATORS, 204),
    # --- /api/keys/: a signed-in user's own keys ----------------------------------------
    Route("mine", "GET", "/api/keys/", SIGNED_IN, 200),
    Route("mine", "POST", "/api/keys/", SIGNED_IN, 201, {"name": "laptop", "credits": 1}),
    Route("mine", "GET", "/api/keys/{own}/", SIGNED_IN, 200),
    Route("mine", "DELETE", "/api/keys/{own}/", SIGNED_IN, 204),
    Route("mine", "GET", "/api/keys/{other}/", SIGNED_IN, 404),
    Route("mine", "DELETE", "/api/keys/{other}/", SIGNED_IN, 404),
    # --- the admin console -------------------------------------------------------------
    Route("admin", "GET", "/admin/", STAFF, 200),
    Route("admin", "GET", "/admin/keys/apikey/", OPERATORS, 200),
    Route("admin", "GET", "/admin/keys/apikey/add/", OPERATORS, 200),
    Route("admin", "POST", "/admin/keys/apikey/add/", OPERATORS, 302, {"name": "console", "credits": "10"}),
    Route("admin", "GET", "/admin/keys/apikey/{key}/change/", OPERATORS, 200),
    Route("admin", "POST", "/admin/keys/apikey/{key}/change/", OPERATORS, 302, {"name": "renamed"}),
    Route("admin", "GET", "/admin/logs/request/", READERS, 200),
    Route("admin", "GET", "/admin/logs/request/{log}/change/", READERS, 200),
    Route("admin", "GET", "/admin/logs/request/add/", (), 200),  # logs are never written by hand
    Route("admin", "GET", "/admin/endpoint/neuron/", READERS, 200),
    Route("admin", "GET", "/admin/endpoint/endpointconfig/", OPERATORS, 302),  # to the one row's page
    Route("admin", "GET", "/admin/endpoint/endpointconfig/1/change/", OPERATORS, 200),
    Route("admin", "POST", "/admin/endpoint/endpointconfig/1/change/", OPERATORS, 302, {"netuid": "7"}),
    Route("admin", "GET", "/admin/endpoint/endpointconfig/add/", (), 200),  # there is one config
    Route("admin", "GET", "/admin/endpoint/subnet/", OPERATORS, 200),
)


# --- the world each cell starts from ------------------------------------------------------


@dataclass
class World:
    client: Client
    ids: dict[str, int]


def make_role(role: str) -> tuple[Client, object | None]:
    """A browser (or script) acting as ``role``, and the user behind it."""
    client = Client()
    user = None
    if role == SUPERUSER:
        user = make_user("root", superuser=True)
    elif role == FULL_STAFF:
        user = full_staff("ops")
    elif role == VIEWER:
        user = viewer("viewer")
    elif role == BARE_STAFF:
        user = make_user("intern", staff=True)
    elif role == USER:
        user = make_user("alice")
    elif role == API_KEY:
        # A superuser's own API key: it calls the gateway, it is no one here.
        key = ApiKeyFactory(owner=make_user("keyholder", superuser=True))
        client = Client(HTTP_AUTHORIZATION=f"Bearer {key.raw}")
    if user is not None:
        client.force_login(user)
    return client, user


def build_world(role: str) -> World:
    config = EndpointConfig.load()
    config.global_rate_limits = [GLOBAL_RULE]
    config.save()
    key = ApiKeyFactory(name="acme", credits=100, rate_limits=[KEY_RULE])
    log = RequestLogFactory(key=None)
    Neuron.objects.create(netuid=1, uid=0, hotkey="5Hot0", axon="127.0.0.1:9100")
    do_add_subnet("images", {"name": "Images", "kind": "image", "netuid": "19"})
    other = ApiKeyFactory(name="bob's", owner=make_user("bob"))
    client, user = make_role(role)
    own = ApiKeyFactory(name="mine", owner=user) if user is not None else other
    return World(client, {"key": key.pk, "log": log.pk, "own": own.pk, "other": other.pk})


def fill(value, ids: dict[str, int]):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {name: fill(item, ids) for name, item in value.items()}
    return value


def key_form(key: ApiKey, **changes: str) -> dict:
    """The key page as a browser posts it back, with ``changes``."""
    data = {
        "name": key.name,
        "enabled": "on",
        "credits": "" if key.credits is None else str(key.credits),
        "valid_until": "never",
        "default_strategy": key.default_strategy,
        "rate_limits-rows": "0",
    }
    return {**data, **changes}


def config_form(row: EndpointConfig, **changes: str) -> dict:
    """The config page as a browser posts it back (secrets left blank), with ``changes``."""
    data: dict = {}
    for name in FIELDS:
        value = getattr(row, name)
        if name in SECRETS:
            data[name] = ""
        elif name == "global_rate_limits":
            data[f"{name}-rows"] = str(len(value))
            for i, rule in enumerate(value):
                data[f"{name}-{i}-times"], data[f"{name}-{i}-seconds"] = str(rule["times"]), str(rule["seconds"])
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = str(value)
    return {**data, **changes}


def admin_body(route: Route, ids: dict[str, int]) -> dict:
    if "apikey/add" in route.path:
        return key_form(ApiKey(name="", credits=None, default_strategy=""), owner="", **route.body)
    if "apikey" in route.path:
        return key_form(ApiKey.objects.get(pk=ids["key"]), **route.body)
    return config_form(EndpointConfig.load(), **route.body)


def send(world: World, route: Route):
    path = fill(route.path, world.ids)
    if route.face == "admin":
        body = admin_body(route, world.ids) if route.body is not None else None
        return world.client.generic(route.method, path) if body is None else world.client.post(path, body)
    body = json.dumps(fill(route.body, world.ids)) if route.body is not None else ""
    return world.client.generic(route.method, path, body, content_type="application/json")


def snapshot() -> tuple:
    """Everything a refused write could have touched."""
    config = EndpointConfig.load()
    keys = list(ApiKey.objects.order_by("pk").values_list("pk", "name", "credits", "enabled", "rate_limits"))
    subnets = [subnet_values(row) for row in Subnet.objects.order_by("slug")]
    return keys, [(name, getattr(config, name)) for name in FIELDS], subnets


def refusal(route: Route, role: str) -> int:
    if route.face == "api":
        return 401 if role in (ANONYMOUS, API_KEY) else 403
    if route.face == "mine":
        return 403
    return 403 if role in STAFF else 302


# --- the matrix ----------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=[route.id for route in ROUTES])
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(db, redis_url, role, route):
    world = build_world(role)
    before = snapshot()

    response = send(world, route)

    allowed = role in route.allowed
    expected = route.ok if allowed else refusal(route, role)
    assert response.status_code == expected, response.content[:300]
    if response.status_code == 302:
        to_login = "/admin/login/" in response["Location"]
        assert to_login is (not allowed), response["Location"]
    if not allowed:
        assert snapshot() == before  # a refused write changed nothing
    if route.face == "api" and expected == 401:
        assert response["WWW-Authenticate"] == "Token"


# --- what a refusal says and keeps --------------------------------------------------------


@pytest.mark.parametrize("role", [VIEWER, FULL_STAFF])
def test_a_non_superuser_cannot_point_moderation_at_their_server(db, role):
    world = build_world(role)
    before = EndpointConfig.load().openai_base_url

    response = world.client.patch(
        "/api/admin/config/", json.dumps({"openai_base_url": ATTACKER_URL}), content_type="application/json"
    )

    assert response.status_code == 403
    assert EndpointConfig.load().openai_base_url == before
    if role == FULL_STAFF:
        assert response.json()["detail"] == "Only a superuser may change openai_base_url."
    else:
        assert response.json()["detail"] == "You need the endpoint.change_endpointconfig permission."


def test_a_viewer_is_told_which_permission_is_missing(db):
    world = build_world(VIEWER)
    response = world.client.post("/api/admin/keys/", json.dumps({"name": "x"}), content_type="application/json")
    assert response.status_code == 403
    assert response.json() == {"detail": "You need the keys.add_apikey permission.", "code": "permission_denied"}
