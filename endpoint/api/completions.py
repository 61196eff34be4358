"""The OpenAI-compatible routes: POST /v1/chat/completions, GET /v1/models and GET /v1/models/{model}.

``model`` picks the strategy (``auto``, ``best``/``best:N``, ``top_n:N``,
``uids:a,b``, ``uid:N``);
the answer is a ``chat.completion`` (or SSE ``chat.completion.chunk``s) with an
extra ``bittensor`` field naming the miner that answered and those that failed,
and where ``usage`` came from (the miner's report, or our own count).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from django.http import StreamingHttpResponse
from rest_framework.response import Response

from endpoint.core.errors import ModelNotFound, openai_body
from endpoint.gateway import ChatStream, GatewayCall
from endpoint.network.dispatch import Dispatch
from endpoint.network.metagraph import adirectory
from endpoint.network.protocol import MinerResult

from .base import AsyncAPIView
from .schema import completions_schema, model_schema, models_schema
from .serializers import ChatCompletionRequest, parse_body

TOP_N_MODELS = (1, 3, 5, 10)


def _message(message: dict[str, Any]) -> dict[str, Any] | None:
    """The miner's message as OpenAI shapes it (``refusal`` always there), or
    None when it says nothing: no text, no refusal, no tool calls."""
    content, refusal, calls = message.get("content"), message.get("refusal"), message.get("tool_calls")
    shaped: dict[str, Any] = {
        "role": "assistant",
        "content": content if isinstance(content, str) else None,
        "refusal": refusal if isinstance(refusal, str) else None,
    }
    if isinstance(calls, list) and calls:
        shaped["tool_calls"] = calls
    elif shaped["content"] is None and shaped["refusal"] is None:
        return None
    return shaped


def _miner_choices(result: MinerResult) -> list[dict[str, Any]]:
    """The choices of one miner's answer, as OpenAI shapes them (indexed in order)."""
    raw = (result.answer or {}).get("choices")
    choices = []
    for i, choice in enumerate(raw if isinstance(raw, list) else []):
        message = choice.get("message") if isinstance(choice, dict) else None
        shaped = _message(message) if isinstance(message, dict) else None
        if shaped is not None:
            finish = choice.get("finish_reason") or ("tool_calls" if "tool_calls" in shaped else "stop")
            choices.append({"index": i, "message": shaped, "finish_reason": finish, "logprobs": None})
    return choices or [
        {
            "index": 0,
            "message": {"role": "assistant", "content": result.content, "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]


def _one_choice_each(outcome: Dispatch) -> list[dict[str, Any]]:
    """With ``n``: each miner that answered gives one choice, indexed in the order they came."""
    return [{**_miner_choices(result)[0], "index": i} for i, result in enumerate(outcome.successes)]


def completion_json(call: GatewayCall, model: str, outcome: Dispatch, *, n: int | None = None) -> dict[str, Any]:
    """The ``chat.completion``: the first miner's choices, or with ``n`` one
    choice from each miner that answered (and who gave which)."""
    winner = outcome.successes[0]
    answered = outcome.successes if n is not None else [winner]
    body: dict[str, Any] = {
        "id": f"chatcmpl-{call.log.id.hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": _one_choice_each(outcome) if n is not None else _miner_choices(winner),
        "bittensor": {
            "uid": winner.uid,
            "hotkey": winner.hotkey,
            "response_ms": round(winner.response_ms, 1),
            "failed": outcome.seed_json()["failed_responses"],
            "usage": call.usage.source,
        },
        "usage": call.usage.json(),
    }
    if n is not None:
        body["bittensor"]["answers"] = [
            {"index": i, "uid": r.uid, "hotkey": r.hotkey, "response_ms": round(r.response_ms, 1)}
            for i, r in enumerate(answered)
        ]
    return body


async def sse_events(
    call: GatewayCall, model: str, stream: ChatStream, *, include_usage: bool = False
) -> AsyncIterator[bytes]:
    completion_id, created = f"chatcmpl-{call.log.id.hex}", int(time.time())
    first = True
    async for chunk in stream.chunks():
        event = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": chunk.get("choices") or [],
        }
        if first:
            failed = [r.seed_failure(i) for i, r in enumerate(stream.race.failures)]
            event["bittensor"] = {"uid": stream.winner.uid, "hotkey": stream.winner.hotkey, "failed": failed}
            first = False
        yield b"data: " + orjson.dumps(event) + b"\n\n"
    if include_usage and stream.usage is not None:  # as OpenAI ends such a stream
        usage = stream.usage
        event = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        event |= {"choices": [], "usage": usage.json(), "bittensor": {"usage": usage.source}}
        yield b"data: " + orjson.dumps(event) + b"\n\n"
    if stream.error:  # as OpenAI ends a stream that fails midway
        error = {"message": stream.error, "type": "api_error", "param": None, "code": stream.error_code}
        yield b"data: " + orjson.dumps({"error": error}) + b"\n\n"
    yield b"data: [DONE]\n\n"


class ChatCompletionsView(AsyncAPIView):
    error_body = staticmethod(openai_body)

    @completions_schema
    async def post(self, request):
        async with self.start_call(request, route="/v1/chat/completions") as call:
            key = await call.identify(request.headers.get("Authorization"))
            body = parse_body(ChatCompletionRequest, request)
            if not body.stream:
                outcome = await call.answer(key, body.prompt())
                return Response(completion_json(call, body.model, outcome, n=body.n))
            stream = await call.open_stream(key, body.prompt())
            call.hand_off()
            events = sse_events(call, body.model, stream, include_usage=body.include_usage)
            response = StreamingHttpResponse(events, content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response


async def _models() -> dict[str, dict[str, Any]]:
    """What GET /v1/models lists, by id: the strategies, then each synced uid."""
    directory = await adirectory()
    created = int(directory.synced_at.timestamp()) if directory.synced_at else 0
    ids = ["auto", "best", *(f"best:{n}" for n in TOP_N_MODELS[1:]), *(f"top_n:{n}" for n in TOP_N_MODELS)]
    ids += [f"uid:{n.uid}" for n in sorted(directory.ranked, key=lambda n: n.uid)]
    return {i: {"id": i, "object": "model", "created": created, "owned_by": "bittensor"} for i in ids}


class ModelsView(AsyncAPIView):
    error_body = staticmethod(openai_body)

    @models_schema
    async def get(self, request):
        async with self.start_call(request, route="/v1/models") as call:
            await call.authenticate(request.headers.get("Authorization"))
            return Response({"object": "list", "data": list((await _models()).values())})


class ModelView(AsyncAPIView):
    """GET /v1/models/{model}: one of the list's models, else 404 ``model_not_found``."""

    error_body = staticmethod(openai_body)

    @model_schema
    async def get(self, request, model: str):
        async with self.start_call(request, route="/v1/models/{model}") as call:
            await call.authenticate(request.headers.get("Authorization"))
            found = (await _models()).get(model)
            if found is None:
                raise ModelNotFound(f"The model {model!r} does not exist. {ModelNotFound.detail}")
            return Response(found)
