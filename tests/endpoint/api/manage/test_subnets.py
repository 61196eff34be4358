"""/api/admin/subnets/: what `manage.py subnets` does, with the same checks;
addresses need a superuser, the chat subnet's settings are the config's."""

from __future__ import annotations

from rest_framework.test import APIClient

from endpoint.core.models import EndpointConfig, Subnet
from tests.commands import manage
from tests.endpoint.roles import grant, make_user

IMAGES = {"slug": "images", "name": "Images", "kind": "image", "netuid": 19, "price": 5}


def test_list_starts_with_the_chat_subnet(admin_api):
    r = admin_api.get("/api/admin/subnets/")
    assert r.status_code == 200
    [chat] = r.json()
    assert (chat["slug"], chat["kind"], chat["price"], chat["enabled"]) == ("chat", "chat", 1, True)
    assert chat["netuid"] == EndpointConfig.load().netuid


def test_create_then_the_cli_lists_it(admin_api):
    r = admin_api.post("/api/admin/subnets/", IMAGES, format="json")
    assert r.status_code == 201, r.json()
    assert (r.json()["slug"], r.json()["netuid"], r.json()["metagraph_source"]) == ("images", 19, "chain")
    listing = manage("subnets", "list")[1]
    assert "images" in listing and "Images" in listing
    assert admin_api.get("/api/admin/subnets/images/").json()["price"] == 5


def test_patch_and_delete(admin_api):
    admin_api.post("/api/admin/subnets/", IMAGES, format="json")
    r = admin_api.patch("/api/admin/subnets/images/", {"price": 8, "enabled": False}, format="json")
    assert r.status_code == 200, r.json()
    assert (r.json()["price"], r.json()["enabled"]) == (8, False)
    assert admin_api.delete("/api/admin/subnets/images/").status_code == 204
    assert not Subnet.objects.filter(slug="images").exists()
    assert admin_api.get("/api/admin/subnets/images/").status_code == 404


def test_bad_fields_are_refused_naming_the_field_and_nothing_changes(admin_api):
    admin_api.post("/api/admin/subnets/", IMAGES, format="json")
    for body, field in (
        ({**IMAGES, "slug": "again"}, "netuid"),  # netuid 19 is the images subnet's
        ({**IMAGES, "slug": "Not A Slug", "netuid": 20}, "slug"),
        ({**IMAGES, "slug": "x", "netuid": 20, "default_strategy": "fastest"}, "default_strategy"),
        ({**IMAGES, "slug": "x", "netuid": 20, "colour": "red"}, "colour"),
    ):
        r = admin_api.post("/api/admin/subnets/", body, format="json")
        assert r.status_code == 400, body
        assert field in r.json()["errors"], r.json()
    r = admin_api.patch("/api/admin/subnets/chat/", {"enabled": False}, format="json")
    assert r.status_code == 400 and "can't be disabled" in r.json()["errors"]["enabled"][0]
    assert admin_api.delete("/api/admin/subnets/chat/").status_code == 400
    assert sorted(Subnet.objects.values_list("slug", flat=True)) == ["chat", "images"]


def test_addresses_need_a_superuser(admin_api, superuser_api):
    body = {**IMAGES, "network": "wss://chain.example:443", "miner_path": "/v1/images"}
    r = admin_api.post("/api/admin/subnets/", body, format="json")
    assert r.status_code == 403 and "network, miner_path" in r.json()["detail"]
    assert not Subnet.objects.filter(slug="images").exists()
    assert superuser_api.post("/api/admin/subnets/", body, format="json").status_code == 201
    r = admin_api.patch("/api/admin/subnets/images/", {"metagraph_file": "/etc/passwd"}, format="json")
    assert r.status_code == 403


def test_the_chat_subnets_price_is_the_configs_and_needs_its_permission(db):
    staff = grant(make_user("subnets-only", staff=True), "endpoint.view_subnet", "endpoint.change_subnet")
    client = APIClient()
    client.force_authenticate(staff)
    r = client.patch("/api/admin/subnets/chat/", {"price": 9}, format="json")
    assert r.status_code == 403 and "endpoint.change_endpointconfig" in r.json()["detail"]
    assert client.patch("/api/admin/subnets/chat/", {"name": "Text"}, format="json").status_code == 200

    grant(staff, "endpoint.change_endpointconfig")
    staff = type(staff).objects.get(pk=staff.pk)  # permissions are cached on the user
    client.force_authenticate(staff)
    assert client.patch("/api/admin/subnets/chat/", {"price": 9}, format="json").status_code == 200
    assert EndpointConfig.load().cost_per_answer == 9


def test_a_user_who_may_not_view_subnets_is_refused(db):
    client = APIClient()
    client.force_authenticate(make_user("bare", staff=True))
    r = client.get("/api/admin/subnets/")
    assert r.status_code == 403 and "endpoint.view_subnet" in r.json()["detail"]
