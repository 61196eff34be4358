"""Fuzzing as a habit, against `manage.py start --workers 2` as operators run it.

- schemathesis walks the published OpenAPI schema: every operation of /chat,
  /v1, /health, /metrics, /api/admin (as a superuser's token) and /api/keys
  (as a signed-in user), at least 500 generated cases for each operation that
  takes any input; no 5xx but the documented 502/503, and every answer as
  the schema says.
- Hypothesis throws arbitrary JSON (deep, wide, odd types, NUL, huge
  numbers) at /chat, /v1/chat/completions and the chat page's send endpoint:
  no 5xx, one log row per call, and no credit moved and no miner called
  unless the answer was a 200.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from keys.models import ApiKey
from keys.services import do_create_key
from logs.models import Request
from tests.servers import ROOT

from .conftest import HELLO

SCHEMATHESIS = ROOT / ".venv" / "bin" / "schemathesis"
EXAMPLES = 500


def fuzzed_cases(events: Path) -> dict[str, int]:
    """Test cases schemathesis ran per operation, all phases (from its NDJSON report)."""
    counts: dict[str, int] = {}
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if finished:
            label = finished["recorder"]["label"]
            counts[label] = counts.get(label, 0) + len(finished["recorder"].get("cases", {}))
    return counts


def fully_fuzzed(counts: dict[str, int]) -> bool:
    """Every operation got its EXAMPLES cases. schemathesis 4.32 sometimes
    ends one operation's fuzzing after a handful of cases and reports it a
    success (which one varies from run to run; alone, each gets its 500), so
    one operation short is let pass, and no more. An operation whose inputs
    run out of new distinct cases (Hypothesis stops repeating itself: a small
    body like a rate rule's) counts as fuzzed at 90 % of EXAMPLES."""
    short = [label for label, count in counts.items() if count < EXAMPLES * 0.9]
    return len(short) <= 1 and all(counts[label] > 0 for label in short)


def run_schemathesis(base: str, paths: str, headers: list[str], tmp_path: Path) -> dict[str, int]:
    cmd = [
        str(SCHEMATHESIS), "run", base + "/api/schema/", "--url", base,
        *(part for header in headers for part in ("--header", header)),
        "--include-path-regex", paths,
        "--checks", "no_server_fault,status_code_conformance,content_type_conformance,"
                    "response_headers_conformance,response_schema_conformance",
        "--mode", "positive", "--max-examples", str(EXAMPLES), "--phases", "examples,coverage,fuzzing",
        "--workers", "2", "--request-timeout", "30", "--seed", "1", "--generation-database", "none",
        "--no-color", "--report", "ndjson", "--report-ndjson-path", str(tmp_path / "events.ndjson"),
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.endpoint.api.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    # Run elsewhere: Hypothesis keeps a .hypothesis/ folder in its working directory.
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    (tmp_path / "stdout.txt").write_text(done.stdout)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    # Warnings (ids that rarely exist, say) may come; failures may not.
    assert re.search(r"(\d+) generated, \1 passed", done.stdout), done.stdout[-4000:]
    return fuzzed_cases(tmp_path / "events.ndjson")


needs_schemathesis = pytest.mark.skipif(
    shutil.which("schemathesis", path=str(SCHEMATHESIS.parent)) is None and not os.environ.get("CI"),
    reason="schemathesis is not installed",
)


@needs_schemathesis
def test_schemathesis_gateway_routes(server, network, tmp_path):
    key = do_create_key(name="schemathesis", credits=None)
    fuzzed = run_schemathesis(
        server["base"], r"^/(chat|v1/|health/|metrics)", [f"Authorization: Bearer {key.raw}"], tmp_path
    )
    # Operations with a body get their cases each; the others have one possible request.
    assert fuzzed["POST /chat"] >= EXAMPLES and fuzzed["POST /v1/chat/completions"] >= EXAMPLES, fuzzed
    assert {"GET /v1/models", "GET /health/live", "GET /health/ready", "GET /metrics"} <= set(fuzzed)


@needs_schemathesis
def test_schemathesis_admin_api_as_superuser(server, network, tmp_path):
    admin = get_user_model().objects.create_superuser("fuzzer", "fuzzer@example.com", "pw-not-used-0123")
    token = Token.objects.create(user=admin)
    for name in ("alpha", "beta"):
        do_create_key(name=name, credits=10)
    fuzzed = run_schemathesis(server["base"], r"^/api/admin/", [f"Authorization: Token {token.key}"], tmp_path)
    assert len(fuzzed) == 24 and fully_fuzzed(fuzzed), fuzzed
    assert {"GET /api/admin/payments/", "GET /api/admin/payments/{id}/"} <= set(fuzzed), fuzzed
    assert {"POST /api/admin/subnets/", "PATCH /api/admin/subnets/{slug}/"} <= set(fuzzed), fuzzed


def signed_in_headers(user) -> list[str]:
    """Cookie and CSRF headers of a signed-in browser session, for a client that isn't one."""
    client = Client()
    client.force_login(user)
    client.get("/app/keys/")  # sets the CSRF cookie
    session, csrf = client.cookies["sessionid"].value, client.cookies["csrftoken"].value
    return [f"Cookie: sessionid={session}; csrftoken={csrf}", f"X-CSRFToken: {csrf}"]


@needs_schemathesis
def test_schemathesis_own_keys_as_a_signed_in_user(server, network, tmp_path):
    user = get_user_model().objects.create_user("chatter", "chatter@example.com", "pw-not-used-0123")
    fuzzed = run_schemathesis(server["base"], r"^/api/keys/", signed_in_headers(user), tmp_path)
    assert len(fuzzed) == 4 and fully_fuzzed(fuzzed), fuzzed


# --- arbitrary JSON -------------------------------------------------------------------

# Hypothesis puts NUL in text often; here it comes from one branch of its own (with_nul).
TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=20)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | st.sampled_from(["user", "system", "top_n:2", "uids:0,1", "best", "", "9" * 40])
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(TEXT, inner, max_size=6),
    max_leaves=40,
)


def nested(depth: int):
    value: object = "x"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


# Past our cap (64), past orjson's writer (254), past Python's recursion limit.
DEEP = (st.sampled_from([65, 255, 300, 1200]) | st.integers(min_value=40, max_value=600)).map(nested)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "assistant", "tool"]), "content": ANY_JSON})
# Mostly well-formed, so that the odd values get past the first check and into the call.
GOOD_MESSAGES = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]), "content": TEXT}),
    min_size=1,
    max_size=3,
)
MESSAGES = GOOD_MESSAGES | st.lists(MESSAGE, max_size=3) | ANY_JSON
SEED_FIELDS = st.fixed_dictionaries(
    {"messages": MESSAGES},
    optional={
        "uids": st.lists(st.integers(min_value=-2, max_value=12), max_size=5) | ANY_JSON,
        "top_n": ANY_JSON,
        "in_parallel": ANY_JSON,
        "strategy": ANY_JSON,
        "respond_on_first_success": ANY_JSON,
        "timeout": st.floats(min_value=0.01, max_value=5) | ANY_JSON,
        "extra": ANY_JSON | DEEP,
    },
)
OPENAI_FIELDS = st.fixed_dictionaries(
    {"model": st.sampled_from(["auto", "best", "top_n:2", "uid:1", "uids:0,1"]) | ANY_JSON, "messages": MESSAGES},
    optional={"stream": st.booleans() | ANY_JSON, "temperature": ANY_JSON, "n": ANY_JSON, "metadata": ANY_JSON | DEEP},
)
CHAT_PAGE_FIELDS = st.fixed_dictionaries(
    {"content": TEXT | ANY_JSON},
    optional={"conversation": ANY_JSON, "settings": ANY_JSON | st.dictionaries(TEXT, ANY_JSON)},
)


def with_nul(body: dict) -> dict:
    return {**body, "note": "a\x00b"}


def deep_in(field: str, base: dict):
    """A well-formed body with one field nested too deep."""
    return DEEP.map(lambda deep: {**base, field: deep})


def bodies(fields, deep):
    # Mostly well-formed fields, so the odd values reach the call; some bare JSON, some too deep, some with NUL.
    return st.one_of(fields, fields, fields, ANY_JSON, DEEP, deep, fields.map(with_nul))


BODIES = {
    "/chat": bodies(SEED_FIELDS, deep_in("extra", {"messages": HELLO})),
    "/v1/chat/completions": bodies(OPENAI_FIELDS, deep_in("metadata", {"model": "auto", "messages": HELLO})),
    "/app/send/": bodies(CHAT_PAGE_FIELDS, deep_in("settings", {"content": "hi"})),
}


def encode(body) -> bytes:
    return json.dumps(body).encode()  # json, not orjson: integers past 64 bits too


def ledger(key_id: int) -> tuple[int | None, int, int]:
    """The key's credits, the request rows, and what they say was charged."""
    rows = Request.objects.filter(key_id=key_id)
    charged = sum(rows.values_list("credits_charged", flat=True))
    return ApiKey.objects.get(pk=key_id).credits, rows.count(), charged


def miner_calls(network) -> int:
    return sum(len(m.seen) for m in network.miners)


def check_one(client: httpx.Client, path: str, body, key_id: int, network) -> None:
    credits, rows, charged = ledger(key_id)
    calls = miner_calls(network)
    r = client.post(path, content=encode(body))
    assert r.status_code < 500 or (r.status_code == 502 and "ailed" in r.text), (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith(("application/json", "text/event-stream", "application/x-ndjson"))
    r.read()
    after, rows_after, charged_after = ledger(key_id)
    assert rows_after == rows + 1  # every call that got past the key is logged, once
    assert credits - after == charged_after - charged  # the balance moved by what the log says
    if r.status_code != 200:
        assert after == credits and miner_calls(network) == calls


FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions"])
def test_arbitrary_json_at_the_gateway(server, network, path):
    new = do_create_key(name="fuzz", credits=10**9)
    headers = {"Authorization": f"Bearer {new.raw}", "Content-Type": "application/json"}
    with httpx.Client(base_url=server["base"], headers=headers, timeout=30) as client:

        @FUZZ
        @given(body=BODIES[path])
        def fuzz(body):
            check_one(client, path, body, new.key.pk, network)

        fuzz()


def test_arbitrary_json_at_the_chat_page(server, network):
    from chat.services import chat_account

    user = get_user_model().objects.create_user("fuzzy", "fuzzy@example.com", "pw-not-used-0123")
    account = chat_account(user)
    cookie, csrf = (h.split(": ", 1)[1] for h in signed_in_headers(user))
    headers = {"Cookie": cookie, "X-CSRFToken": csrf, "Content-Type": "application/json"}
    with httpx.Client(base_url=server["base"], headers=headers, timeout=30) as client:
        # Signed in and past CSRF: the warm-up is answered by the page's own code.
        assert client.post("/app/send/", content=encode({"content": HELLO[0]["content"]})).status_code in (200, 402)

        @FUZZ
        @given(body=BODIES["/app/send/"])
        def fuzz(body):
            credits, calls = ApiKey.objects.get(pk=account.key.pk).credits, miner_calls(network)
            r = client.post("/app/send/", content=encode(body))
            text = r.read().decode(errors="replace")
            assert r.status_code < 500 or (r.status_code == 502 and "ailed" in text), (r.status_code, text[:300])
            if r.status_code != 200:
                assert ApiKey.objects.get(pk=account.key.pk).credits == credits
                assert miner_calls(network) == calls

        fuzz()
