"""`manage.py start` with LOG_FORMAT=json: every line the server writes is
JSON, uvicorn's own included, and goes through the secret-masking filter."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.servers import ROOT, database_env, free_port, stop


@pytest.fixture
def json_server(postgres, tmp_path):
    port = free_port()
    env = {**database_env(), "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING", "STATIC_ROOT": str(tmp_path / "static")}
    err = (tmp_path / "stderr").open("w+")
    cmd = [sys.executable, "manage.py", "start", "--workers", "1", "--no-collectstatic", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop(proc)
                pytest.fail("manage.py start did not serve")
            time.sleep(0.2)
    yield port, proc, tmp_path / "stderr"
    stop(proc)


def send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        try:
            return sock.recv(4096)
        except OSError:
            return b""


def test_uvicorn_errors_are_json_lines_with_secrets_masked(json_server):
    port, proc, stderr = json_server
    secret = "vep_Zz98Yy76Xx54Ww32Vv10Uu98Tt76"
    send_raw(port, f"GARBAGE /chat HTTP/9.9\r\nAuthorization: Bearer {secret}\r\n\r\n".encode())
    time.sleep(0.5)
    stop(proc)
    text = stderr.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "the server wrote nothing"
    entries = [json.loads(line) for line in lines]  # fails on any plain-text line
    assert any(e["logger"].startswith("uvicorn") for e in entries), entries
    assert secret not in text


def test_each_refused_request_is_one_line_without_a_traceback(json_server):
    from django.conf import settings
    from django.test import Client

    from tests.factories import UserFactory

    port, proc, stderr = json_server
    staff = Client()
    staff.force_login(UserFactory(username="no-permissions", is_staff=True))
    base = f"http://127.0.0.1:{port}"
    bad_key = {"Authorization": "Bearer vep_NotAKeyNotAKeyNotAKey00"}
    hello = {"messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(base + "/chat", json=hello, headers=bad_key).status_code == 401
    assert httpx.post(base + "/v1/chat/completions", json=hello, headers=bad_key).status_code == 401
    assert httpx.get(base + "/v1/no-such-route").status_code == 404
    cookies = {settings.SESSION_COOKIE_NAME: staff.cookies[settings.SESSION_COOKIE_NAME].value}
    assert httpx.get(base + "/admin/keys/apikey/", cookies=cookies).status_code == 403
    time.sleep(0.5)
    stop(proc)

    entries = [json.loads(line) for line in stderr.read_text().splitlines() if line.startswith("{")]
    for path, start in [
        ("/chat", "401 APIKeyInvalid POST /chat:"),
        ("/v1/chat/completions", "401 APIKeyInvalid POST /v1/chat/completions:"),
        ("/v1/no-such-route", "404 not_found GET /v1/no-such-route:"),
        ("/admin/keys/apikey/", "Forbidden (Permission denied): /admin/keys/apikey/"),
    ]:
        about = [e for e in entries if e["message"].endswith(path) or f" {path}:" in e["message"]]
        assert [e["message"][: len(start)] for e in about] == [start], about
        assert "exc_info" not in about[0]
