"""/api/admin/keys/: the CLI's key management as JSON, over the same
services, so what one face writes the others read."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from asgiref.sync import async_to_sync
from django.utils import timezone

from keys.models import ApiKey
from keys.services import aauthenticate_key
from tests.commands import manage
from tests.factories import ApiKeyFactory, UserFactory

RAW_KEY = re.compile(r"vep_[A-Za-z0-9_-]{20,}")


def test_create_shows_the_full_key_once_and_it_works(admin_api, transactional_db):
    r = admin_api.post("/api/admin/keys/", {"name": "acme", "credits": 100, "valid_until": "in 1 month"}, format="json")

    assert r.status_code == 201
    body = r.json()
    assert RAW_KEY.fullmatch(body["key"])
    assert body["prefix"] == body["key"][:8]
    assert (body["name"], body["credits"], body["unlimited"], body["enabled"]) == ("acme", 100, False, True)
    expires = datetime.fromisoformat(body["expires_at"])
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert today + timedelta(days=27) < expires < today + timedelta(days=32)
    # Committed, so the gateway's DB threads see it.
    assert async_to_sync(aauthenticate_key)(body["key"]).pk == body["id"]

    # Never again: not in the list, not in the key's own page.
    listed = admin_api.get("/api/admin/keys/").content.decode()
    detail = admin_api.get(f"/api/admin/keys/{body['id']}/").content.decode()
    assert body["key"] not in listed and body["key"] not in detail
    assert RAW_KEY.search(listed) is None


def test_created_key_appears_in_the_cli_and_cli_keys_appear_here(admin_api):
    made = admin_api.post("/api/admin/keys/", {"name": "from-api", "credits": -1}, format="json").json()
    code, out, _ = manage("key", "list")
    assert code == 0
    assert "from-api" in out and made["prefix"] in out and "unlimited" in out

    code, out, _ = manage("key", "create", "-n", "from-cli", "-c", "7", "-s", "top_n:3")
    assert code == 0
    listed = admin_api.get("/api/admin/keys/", {"search": "from-cli"}).json()["results"]
    assert [(k["name"], k["credits"], k["default_strategy"]) for k in listed] == [("from-cli", 7, "top_n:3")]


def test_create_refuses_bad_input_with_field_errors(admin_api):
    r = admin_api.post(
        "/api/admin/keys/",
        {"credits": -5, "valid_until": "yesterday", "default_strategy": "fastest", "rate_limits": [{"times": 0}]},
        format="json",
    )
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"credits", "valid_until", "default_strategy", "rate_limits"}
    assert "past" in body["errors"]["valid_until"][0]
    assert not ApiKey.objects.exists()


def test_create_for_an_owner_with_own_rate_limits(admin_api):
    UserFactory(username="carol")
    r = admin_api.post(
        "/api/admin/keys/",
        {"name": "c", "owner": "carol", "rate_limits": [{"times": 5, "seconds": 1}], "enabled": False},
        format="json",
    )
    assert r.status_code == 201
    key = ApiKey.objects.get(pk=r.json()["id"])
    assert (key.owner.username, key.rate_limits, key.enabled) == ("carol", [{"times": 5, "seconds": 1}], False)

    unknown = admin_api.post("/api/admin/keys/", {"owner": "nobody"}, format="json")
    assert unknown.status_code == 400 and "owner" in unknown.json()["errors"]


def test_filters_search_and_ordering(admin_api):
    carol = UserFactory(username="carol")
    ApiKeyFactory(name="live", credits=5, owner=carol)
    ApiKeyFactory(name="off", enabled=False)
    ApiKeyFactory(name="old", expires_at=timezone.now() - timedelta(days=1), credits=1)
    ApiKeyFactory(name="open", credits=None)

    def names(**params) -> list[str]:
        r = admin_api.get("/api/admin/keys/", params)
        assert r.status_code == 200, r.json()
        return [k["name"] for k in r.json()["results"]]

    assert names(enabled="false") == ["off"]
    assert names(expired="true") == ["old"]
    assert names(expired="false") == ["live", "off", "open"]
    assert names(unlimited="false") == ["live", "old"]
    assert names(owner="carol") == ["live"]
    assert names(search="op") == ["open"]
    assert names(ordering="-name") == ["open", "old", "off", "live"]
    live = ApiKey.objects.get(name="live")
    assert names(search=live.prefix) == ["live"]


def test_pages_are_bounded(admin_api):
    ApiKey.objects.bulk_create(ApiKey(name=f"k{i}", prefix=f"vep_{i:04d}", secret_hash=f"{i:064d}") for i in range(230))
    first = admin_api.get("/api/admin/keys/").json()
    assert (first["count"], len(first["results"])) == (230, 50)
    huge = admin_api.get("/api/admin/keys/", {"page_size": 10_000}).json()
    assert len(huge["results"]) == 200
    assert huge["next"] is not None


def test_retrieve_by_id_or_prefix_404_and_ambiguous_409(admin_api):
    key = ApiKeyFactory(name="one")
    assert admin_api.get(f"/api/admin/keys/{key.pk}/").json()["name"] == "one"
    assert admin_api.get(f"/api/admin/keys/{key.prefix}/").json()["id"] == key.pk

    missing = admin_api.get("/api/admin/keys/99999/")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"

    ApiKeyFactory(prefix="vep_same", raw="vep_same" + "a" * 30)
    ApiKeyFactory(prefix="vep_same", raw="vep_same" + "b" * 30)
    ambiguous = admin_api.get("/api/admin/keys/vep_same/")
    assert ambiguous.status_code == 409
    assert ambiguous.json()["code"] == "ambiguous_key"

    # A full key in a URL would land in access logs: refused, not looked up.
    refused = admin_api.get(f"/api/admin/keys/{key.raw}/")
    assert refused.status_code == 400
    assert key.raw not in refused.content.decode()


def test_partial_update_edits_only_what_is_sent(admin_api):
    key = ApiKeyFactory(name="before", credits=10, default_strategy="top_n:2", request_count=9)
    r = admin_api.patch(
        f"/api/admin/keys/{key.prefix}/",
        {"name": "after", "valid_until": "2099-01-01", "default_strategy": "uids:1,2", "reset_requests": True},
        format="json",
    )
    assert r.status_code == 200, r.json()
    body = r.json()
    assert (body["name"], body["credits"], body["default_strategy"], body["request_count"]) == (
        "after",
        10,
        "uids:1,2",
        0,
    )
    assert body["expires_at"].startswith("2099-01-01")

    never = admin_api.patch(f"/api/admin/keys/{key.pk}/", {"valid_until": "never", "enabled": False}, format="json")
    assert (never.json()["expires_at"], never.json()["enabled"]) == (None, False)
    code, out, _ = manage("key", "list")
    assert "after" in out and "never" in out


def test_partial_update_tops_up_credits_atomically(admin_api):
    key = ApiKeyFactory(name="kept", credits=10)
    r = admin_api.patch(f"/api/admin/keys/{key.pk}/", {"add_credits": 15, "reason": "paid invoice 7"}, format="json")
    assert r.json()["credits"] == 25

    # A refused top-up leaves the other edits in the same request undone.
    refused = admin_api.patch(f"/api/admin/keys/{key.pk}/", {"name": "renamed", "add_credits": -100}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_enough_credits"
    key.refresh_from_db()
    assert (key.name, key.credits) == ("kept", 25)

    both = admin_api.patch(f"/api/admin/keys/{key.pk}/", {"credits": 1, "add_credits": 1}, format="json")
    assert both.status_code == 400 and "add_credits" in both.json()["errors"]
    assert admin_api.patch(f"/api/admin/keys/{key.pk}/", {}, format="json").status_code == 400
    assert admin_api.patch(f"/api/admin/keys/{key.pk}/", {"credits": -1}, format="json").json()["unlimited"] is True


def test_set_rate_limits_on_a_key(admin_api):
    key = ApiKeyFactory()
    r = admin_api.patch(f"/api/admin/keys/{key.pk}/", {"rate_limits": [{"times": 3, "seconds": 10}]}, format="json")
    assert r.json()["rate_limits"] == [{"times": 3, "seconds": 10}]
    code, out, _ = manage("ratelimit", "-k", str(key.pk), "list")
    assert "Rate limits of" in out and "3" in out and "10" in out


def test_delete_removes_the_key_for_every_face(admin_api):
    key = ApiKeyFactory(name="doomed")
    r = admin_api.delete(f"/api/admin/keys/{key.pk}/")
    assert r.status_code == 204
    assert not ApiKey.objects.filter(pk=key.pk).exists()
    assert "doomed" not in manage("key", "list")[1]
    assert admin_api.delete(f"/api/admin/keys/{key.pk}/").status_code == 404
