"""`manage.py start --workers 2` as an operator runs it: a real two-process
server on the test database, serving hashed and compressed static files
(admin CSS, Swagger UI's JS from our own /static/), and one truth in /metrics
whichever worker is scraped (the server fixture is in conftest; the fuzzing
of its schema is in test_fuzz)."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from keys.services import do_create_key

from .conftest import HELLO, bearer


def fresh_connections() -> httpx.Client:
    """A client that opens a new connection per request, so requests spread over the workers."""
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=30)


def test_start_says_where_it_listens(server):
    assert f"listening on http://127.0.0.1:{server['port']} (2 worker(s))" in server["stdout"].read_text()


def test_admin_css_is_served_hashed_and_compressed(server):
    page = httpx.get(server["base"] + "/admin/login/")
    assert page.status_code == 200
    css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', page.text)
    assert css, "the admin links its stylesheet by a content-hashed name"
    r = httpx.get(server["base"] + css.group(1), headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/css")
    assert r.headers["content-encoding"] == "gzip"
    assert "immutable" in r.headers["cache-control"]
    assert "#header" in r.text  # the admin's own stylesheet, decompressed by the client


def test_swagger_ui_loads_its_assets_from_our_static(server):
    page = httpx.get(server["base"] + "/api/docs/")
    assert page.status_code == 200
    scripts = re.findall(r'src="([^"]+)"', page.text)
    assert scripts and all(src.startswith("/static/") for src in scripts), scripts
    bundle = next(src for src in scripts if "swagger-ui-bundle" in src)
    r = httpx.get(server["base"] + bundle)
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert "cdn." not in page.text and "unpkg" not in page.text


def requests_total(text: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "vep_requests_total" and s.labels == labels:
                return s.value
    return 0.0


def test_metrics_count_every_call_whichever_worker_served_or_is_scraped(server, network):
    key = do_create_key(name="metrics", credits=None)
    files = server["metrics_dir"].glob
    calls = 0
    with fresh_connections() as client:
        # Which worker accepts a connection is the kernel's choice: call until both have served.
        while calls < 12 or (len(list(files("counter_*.db"))) < 2 and calls < 200):
            r = client.post(server["base"] + "/chat", json={"messages": HELLO}, headers=bearer(key))
            assert r.status_code == 200, r.text
            calls += 1
        client.post(server["base"] + "/chat", json={"messages": HELLO})  # 401
        scrapes = [client.get(server["base"] + "/metrics").text for _ in range(6)]
    assert len(list(files("counter_*.db"))) == 2  # both workers counted, each in its own file
    ok = {"route": "/chat", "status": "200", "code": ""}
    missing = {"route": "/chat", "status": "401", "code": "APIKeyMissing"}
    assert [requests_total(s, **ok) for s in scrapes] == [calls] * 6
    assert [requests_total(s, **missing) for s in scrapes] == [1] * 6
