"""The moderation filter, against a local OpenAI-compatible fake."""

from __future__ import annotations

import logging

import pytest

from endpoint.core.config import do_set_config
from endpoint.core.db import run_db
from keys.models import ApiKey
from logs.models import Request

from .conftest import HELLO, bearer

pytestmark = pytest.mark.django_db(transaction=True)


async def test_flagged_prompt_is_refused_uncharged_and_logged(api, key, network, fake_openai):
    messages = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "please FLAGME now"}]
    r = await api.post("/chat", json={"messages": messages}, headers=bearer(key))
    assert r.status_code == 400
    assert r.json()["code"] == "FlaggedByOpenAIModerationFilter"
    assert not any(m.seen for m in network.miners)
    assert (await run_db(ApiKey.objects.get, pk=key.key.pk)).credits == 1000
    assert await run_db(lambda: Request.objects.filter(api_error="FlaggedByOpenAIModerationFilter").count()) == 1
    (call,) = fake_openai.calls
    assert call["body"]["input"] == ["be nice", "please FLAGME now"]  # every message, in one call
    assert call["auth"] == "Bearer sk-test-moderation"


async def test_flagged_prompt_on_v1_uses_openai_error_shape(api, key, network, fake_openai):
    body = {"model": "auto", "messages": [{"role": "user", "content": "FLAGME"}]}
    r = await api.post("/v1/chat/completions", json=body, headers=bearer(key))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "FlaggedByOpenAIModerationFilter"


async def test_clean_prompt_goes_through(api, key, network, fake_openai):
    r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(key))
    assert r.status_code == 200
    assert len(fake_openai.calls) == 1


async def test_moderation_timeout_fails_open_with_a_warning(api, key, network, fake_openai, caplog):
    fake_openai.delay = 2.0
    with caplog.at_level(logging.WARNING, logger="endpoint.moderation"):
        r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(key))
    assert r.status_code == 200
    assert "moderation check failed" in caplog.text


async def test_moderation_auth_error_fails_open_with_a_warning(api, key, network, fake_openai, caplog):
    fake_openai.status = 401
    with caplog.at_level(logging.WARNING, logger="endpoint.moderation"):
        r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(key))
    assert r.status_code == 200
    assert "AuthenticationError" in caplog.text
    assert "sk-test-moderation" not in caplog.text


async def test_moderation_can_fail_closed(api, key, network, fake_openai):
    fake_openai.status = 401
    await run_db(do_set_config, "moderation_fail_closed", "true")
    r = await api.post("/chat", json={"messages": HELLO}, headers=bearer(key))
    assert r.status_code == 503 and r.json()["code"] == "ModerationUnavailable"
    assert not any(m.seen for m in network.miners)


async def test_moderation_off_calls_nobody(api, key, network, fake_openai):
    await run_db(do_set_config, "moderation_enabled", "false")
    r = await api.post("/chat", json={"messages": [{"role": "user", "content": "FLAGME"}]}, headers=bearer(key))
    assert r.status_code == 200
    assert fake_openai.calls == []


def _text_parts(*texts: str) -> list[dict]:
    return [{"type": "text", "text": text} for text in texts]


async def test_flagged_text_part_in_a_content_list_is_refused_uncharged(api, key, network, fake_openai):
    messages = [{"role": "user", "content": _text_parts("Tell me a story.", "Make it about FLAGME.")}]
    r = await api.post("/v1/chat/completions", json={"model": "auto", "messages": messages}, headers=bearer(key))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "FlaggedByOpenAIModerationFilter"
    assert not any(m.seen for m in network.miners)
    assert (await run_db(ApiKey.objects.get, pk=key.key.pk)).credits == 1000
    (call,) = fake_openai.calls
    assert call["body"]["input"] == ["Tell me a story.", "Make it about FLAGME."]


TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "weather"}'}}


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([{"role": "system", "content": _text_parts("FLAGME")}, *HELLO], id="system-text-parts"),
        pytest.param([{"role": "developer", "content": "FLAGME"}, *HELLO], id="developer"),
        pytest.param([{"role": "user", "name": "FLAGME", "content": "hi"}], id="name"),
        pytest.param(
            [
                *HELLO,
                {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": "FLAGME"},
            ],
            id="tool-result",
        ),
        pytest.param(
            [
                *HELLO,
                {"role": "tool", "tool_call_id": "call_1", "content": _text_parts("sunny", "FLAGME")},
            ],
            id="tool-result-text-parts",
        ),
        pytest.param(
            [
                *HELLO,
                {
                    "role": "assistant",
                    "tool_calls": [{**TOOL_CALL, "function": {"name": "lookup", "arguments": '{"q": "FLAGME"}'}}],
                },
            ],
            id="tool-call-arguments",
        ),
        pytest.param(
            [*HELLO, {"role": "assistant", "content": [{"type": "refusal", "refusal": "FLAGME"}]}],
            id="refusal-part",
        ),
        pytest.param([{"role": "user", "content": "hi", "metadata": {"note": ["FLAGME"]}}], id="unknown-field"),
    ],
)
async def test_every_text_a_miner_receives_is_moderated(api, key, network, fake_openai, messages):
    r = await api.post("/v1/chat/completions", json={"model": "auto", "messages": messages}, headers=bearer(key))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "FlaggedByOpenAIModerationFilter"
    assert not any(m.seen for m in network.miners)
    assert (await run_db(ApiKey.objects.get, pk=key.key.pk)).credits == 1000


async def test_clean_content_list_goes_through_without_its_image(api, key, network, fake_openai):
    picture = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [*_text_parts("What is in this picture?"), picture]}]
    r = await api.post("/v1/chat/completions", json={"model": "auto", "messages": messages}, headers=bearer(key))
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"].endswith("heard: What is in this picture?")
    (call,) = fake_openai.calls
    assert call["body"]["input"] == ["What is in this picture?"]


async def test_text_in_request_fields_beside_the_messages_is_moderated(api, key, network, fake_openai):
    tool = {"type": "function", "function": {"name": "lookup", "description": "FLAGME", "parameters": {}}}
    body = {"model": "auto", "messages": HELLO, "tools": [tool]}
    r = await api.post("/v1/chat/completions", json=body, headers=bearer(key))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "FlaggedByOpenAIModerationFilter"
    assert not any(m.seen for m in network.miners)
