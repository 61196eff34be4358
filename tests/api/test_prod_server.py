"""`manage.py start --workers 2` as an operator runs it: a real two-process
server on the test database, serving hashed and compressed static files
(admin CSS, Swagger UI's JS from our own /static/), one truth in /metrics
whichever worker is scraped, and an OpenAPI schema the server keeps to
under schemathesis."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keys.services import do_create_key
from tests.servers import ROOT, database_env, free_port, stop

from .conftest import HELLO, bearer


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    """`manage.py start --workers 2` on the test database."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (several processes share the database)")
    tmp = tmp_path_factory.mktemp("prod-server")
    port = free_port()
    env = {
        **database_env(),
        "STATIC_ROOT": str(tmp / "static"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "metrics"),
    }
    out = (tmp / "stdout").open("w+")
    cmd = [sys.executable, "manage.py", "start", "--workers", "2", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/health/live", timeout=2)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop(proc)
                out.seek(0)
                pytest.fail("manage.py start did not serve: " + out.read())
            time.sleep(0.2)
    yield {"base": base, "port": port, "stdout": tmp / "stdout", "metrics_dir": tmp / "metrics"}
    stop(proc)


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


@pytest.mark.skipif(shutil.which("schemathesis", path=str(ROOT / ".venv" / "bin")) is None, reason="no schemathesis")
def test_schemathesis_finds_no_5xx_and_no_schema_violation(server, network, tmp_path):
    key = do_create_key(name="schemathesis", credits=None)
    cmd = [
        str(ROOT / ".venv" / "bin" / "schemathesis"), "run", server["base"] + "/api/schema/",
        "--url", server["base"],
        "--header", f"Authorization: Bearer {key.raw}",
        "--include-path-regex", r"^/(chat|v1/|health/|metrics)",
        "--checks", "no_server_fault,status_code_conformance,content_type_conformance,"
                    "response_headers_conformance,response_schema_conformance",
        "--mode", "positive",
        "--max-examples", "200",
        "--phases", "examples,coverage,fuzzing",
        "--workers", "2",
        "--request-timeout", "30",
        "--seed", "1",
        "--generation-database", "none",
        "--no-color",
        "--report", "ndjson", "--report-ndjson-path", str(tmp_path / "events.ndjson"),
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    # Run elsewhere: Hypothesis keeps a .hypothesis/ folder in its working directory.
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "No issues found" in done.stdout
    fuzzed = fuzzed_cases(tmp_path / "events.ndjson")
    # Operations with a body get 200 generated cases each; the others have one possible request.
    assert fuzzed["POST /chat"] >= 200 and fuzzed["POST /v1/chat/completions"] >= 200, fuzzed
    assert {"GET /v1/models", "GET /health/live", "GET /health/ready", "GET /metrics"} <= set(fuzzed)


def fuzzed_cases(events: Path) -> dict[str, int]:
    """Test cases schemathesis ran per operation in its fuzzing phase (from its NDJSON report)."""
    counts: dict[str, int] = {}
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if finished and finished["phase"] == "fuzzing":
            label = finished["recorder"]["label"]
            counts[label] = counts.get(label, 0) + len(finished["recorder"].get("cases", {}))
    return counts
