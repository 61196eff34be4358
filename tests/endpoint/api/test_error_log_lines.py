"""Every error an API answers is one log line, with its status and code, and
no traceback: not one from the handler plus Django's "Unauthorized: /chat"."""

from __future__ import annotations

import pytest

HELLO = {"messages": [{"role": "user", "content": "hi"}]}


def lines_about(caplog, path: str) -> list:
    return [r for r in caplog.records if path in r.getMessage()]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/chat", HELLO, 401, "APIKeyInvalid"),
        ("POST", "/v1/chat/completions", HELLO, 401, "APIKeyInvalid"),
        ("GET", "/api/admin/config/", None, 401, "not_authenticated"),
        ("GET", "/v1/no-such-route", None, 404, "not_found"),
    ],
)
async def test_an_api_error_is_logged_once_with_status_and_code(
    postgres, api, caplog, method, path, body, status, code
):
    caplog.set_level("INFO")
    headers = {"Authorization": "Bearer vep_NotAKeyNotAKeyNotAKey00"}
    answer = await api.request(method, path, json=body, headers=headers)
    assert answer.status_code == status

    lines = lines_about(caplog, path)
    assert len(lines) == 1, [(r.name, r.getMessage()) for r in lines]
    (line,) = lines
    assert line.levelname == "WARNING" and line.exc_info is None
    assert line.getMessage().startswith(f"{status} {code} {method} {path}: ")
    assert "vep_NotAKeyNotAKey" not in caplog.text
