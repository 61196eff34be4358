"""/api/admin/ratelimits/: `manage.py ratelimit` as JSON, through the same
functions, global and per key."""

from __future__ import annotations

from endpoint.core.models import EndpointConfig
from keys.models import ApiKey
from tests.commands import manage
from tests.factories import ApiKeyFactory


def test_status_reports_the_switch_the_counter_and_the_global_rules(admin_api, redis_url):
    manage("ratelimit", "add", "60", "60")
    body = admin_api.get("/api/admin/ratelimits/").json()
    assert body["enabled"] is False
    assert body["limiter_healthy"] is True
    assert "answers" in body["limiter"]
    assert body["global_rules"] == [{"times": 60, "seconds": 60}]


def test_enable_and_disable(admin_api):
    assert admin_api.patch("/api/admin/ratelimits/", {"enabled": True}, format="json").json() == {"enabled": True}
    assert EndpointConfig.load().rate_limiting_enabled is True
    assert "enabled" in manage("ratelimit", "status")[1]
    admin_api.patch("/api/admin/ratelimits/", {"enabled": False}, format="json")
    assert EndpointConfig.load().rate_limiting_enabled is False
    assert admin_api.patch("/api/admin/ratelimits/", {"enabled": "maybe"}, format="json").status_code == 400


def test_global_rules_add_list_delete_shared_with_the_cli(admin_api):
    r = admin_api.post("/api/admin/ratelimits/rules/", {"times": 10, "seconds": 1}, format="json")
    assert r.status_code == 201
    assert r.json() == {"key": None, "own": False, "enabled": False, "rules": [{"times": 10, "seconds": 1}]}
    manage("ratelimit", "add", "100", "60")
    rules = admin_api.get("/api/admin/ratelimits/rules/").json()["rules"]
    assert rules == [{"times": 10, "seconds": 1}, {"times": 100, "seconds": 60}]

    left = admin_api.delete("/api/admin/ratelimits/rules/0/").json()["rules"]
    assert left == [{"times": 100, "seconds": 60}]
    out = manage("ratelimit", "list")[1]
    assert "100" in out and "│ 10 " not in out

    missing = admin_api.delete("/api/admin/ratelimits/rules/5/")
    assert missing.status_code == 404
    assert "indexes run from 0 to 0" in missing.json()["detail"]


def test_a_keys_own_rules(admin_api):
    key = ApiKeyFactory()
    manage("ratelimit", "add", "100", "60")
    inherited = admin_api.get("/api/admin/ratelimits/rules/", {"key": key.prefix}).json()
    assert (inherited["own"], inherited["rules"]) == (False, [{"times": 100, "seconds": 60}])

    r = admin_api.post("/api/admin/ratelimits/rules/", {"times": 5, "seconds": 1, "key": str(key.pk)}, format="json")
    assert r.json() == {"key": key.pk, "own": True, "enabled": False, "rules": [{"times": 5, "seconds": 1}]}
    assert ApiKey.objects.get(pk=key.pk).rate_limits == [{"times": 5, "seconds": 1}]
    assert "Rate limits of" in manage("ratelimit", "-k", str(key.pk), "list")[1]

    admin_api.delete(f"/api/admin/ratelimits/rules/0/?key={key.pk}")
    assert ApiKey.objects.get(pk=key.pk).rate_limits == []
    assert admin_api.get("/api/admin/ratelimits/rules/", {"key": "999"}).status_code == 404


def test_bad_rules_are_400(admin_api):
    r = admin_api.post("/api/admin/ratelimits/rules/", {"times": 0, "seconds": "x"}, format="json")
    assert r.status_code == 400
    assert set(r.json()["errors"]) == {"times", "seconds"}
