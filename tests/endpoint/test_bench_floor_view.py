"""The benchmarks' bare forwarding view (endpoint.api.floor) exists only when
BENCH_FLOOR_UPSTREAMS is set, which it never is by default."""

import pytest
from django.conf import settings
from django.urls import NoReverseMatch, reverse


def test_the_floor_view_is_not_mounted_by_default(client):
    assert settings.BENCH_FLOOR_UPSTREAMS == []
    with pytest.raises(NoReverseMatch):
        reverse("bench-floor", args=[0])
    assert client.post("/bench/floor/0", data=b"{}", content_type="application/json").status_code == 404
