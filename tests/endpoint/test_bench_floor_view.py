"""The benchmarks' bare forwarding view (tests/bench/floor.py) is served only
under the bench server's settings (tests.bench.settings), never by the site's."""

import pytest
from django.conf import settings
from django.urls import NoReverseMatch, resolve, reverse

from tests.bench import floor
from tests.bench import settings as bench_settings


def test_the_floor_view_is_not_mounted_by_default(client):
    assert settings.BENCH_FLOOR_UPSTREAMS == []
    with pytest.raises(NoReverseMatch):
        reverse("bench-floor", args=[0])
    assert client.post("/bench/floor/0", data=b"{}", content_type="application/json").status_code == 404


def test_the_bench_settings_add_the_floor_to_the_site(client, settings):
    settings.ROOT_URLCONF = bench_settings.ROOT_URLCONF
    assert reverse("bench-floor", args=[0]) == "/bench/floor/0"
    assert resolve("/bench/floor/0").func is floor.forward
    assert resolve("/health/live").url_name == "health-live"
    assert client.get("/bench/floor/0").status_code == 405  # mounted: POST only
    assert client.get("/api/admin/nothing/").json()["code"] == "not_found"  # the site's handler404 too
