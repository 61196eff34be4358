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
from endpoint.core.subnets import aserved_subnets, resolve_model
from endpoint.gateway import ChatStream, GatewayCall
from endpoint.network.dispatch import Dispatch
from endpoint.network.metagraph import adirectory
from endpoint.network.protocol import MinerResult

from .base import AsyncAPIView
from .schema import completions_schema, model_schema, models_schema
from .serializers import ChatCompletionRequest, parse_body

TOP_N_MODELS = (1, 3, 5, 10)

# What OpenAI's schemas allow where a miner's answer is relayed; miners run
# other OpenAI-compatible servers, whose answers are looser.
FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")
DELTA_ROLES = ("developer", "system", "user", "assistant", "tool")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _arguments(value: Any) -> str:
    """A tool call's arguments as the JSON text OpenAI sends (some servers send an object)."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    """The miner's tool calls as OpenAI shapes them: each with an id, a type
    and a named function (or custom tool); calls without a name are dropped."""
    calls = []
    for i, call in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(call, dict):
            continue
        ident = _text(call.get("id")) or f"call_{i}"
        function, custom = call.get("function"), call.get("custom")
        if isinstance(function, dict) and _text(function.get("name")):
            arguments = _arguments(function.get("arguments", "{}"))
            calls.append(
                {"id": ident, "type": "function", "function": {"name": function["name"], "arguments": arguments}}
            )
        elif isinstance(custom, dict) and _text(custom.get("name")) and _text(custom.get("input")) is not None:
            calls.append({"id": ident, "type": "custom", "custom": {"name": custom["name"], "input": custom["input"]}})
    return calls


def _tool_call_chunks(raw: list) -> list[dict[str, Any]]:
    """Streamed tool-call fragments, each with the index OpenAI requires."""
    chunks = []
    for position, call in enumerate(raw):
        if not isinstance(call, dict):
            continue
        shaped: dict[str, Any] = {"index": call["index"] if _is_count(call.get("index")) else position}
        if _text(call.get("id")):
            shaped["id"] = call["id"]
        function = call.get("function")
        if isinstance(function, dict):
            shaped["type"] = "function"
            shaped["function"] = {k: function[k] for k in ("name", "arguments") if _text(function.get(k)) is not None}
        chunks.append(shaped)
    return chunks


def _message(message: dict[str, Any]) -> dict[str, Any] | None:
    """The miner's message as OpenAI shapes it (``refusal`` always there), or
    None when it says nothing: no text, no refusal, no tool calls."""
    calls = _tool_calls(message.get("tool_calls"))
    shaped: dict[str, Any] = {
        "role": "assistant",
        "content": _text(message.get("content")),
        "refusal": _text(message.get("refusal")),
    }
    if calls:
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
            finish = choice.get("finish_reason")
            if finish not in FINISH_REASONS:
                finish = "tool_calls" if "tool_calls" in shaped else "stop"
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


def _delta(raw: Any) -> dict[str, Any]:
    """A streamed choice's delta with what OpenAI's schema allows of it."""
    if not isinstance(raw, dict):
        return {}
    delta = {k: raw[k] for k in ("content", "refusal") if k in raw and (raw[k] is None or isinstance(raw[k], str))}
    if raw.get("role") in DELTA_ROLES:
        delta["role"] = raw["role"]
    if isinstance(raw.get("tool_calls"), list):
        delta["tool_calls"] = _tool_call_chunks(raw["tool_calls"])
    if isinstance(raw.get("function_call"), dict):
        delta["function_call"] = raw["function_call"]
    return delta


def _chunk_choices(raw: Any) -> list[dict[str, Any]]:
    """A miner's streamed choices as OpenAI shapes them: each with its index,
    delta and finish_reason (null until the last)."""
    choices = []
    for position, choice in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(choice, dict):
            continue
        finish = choice.get("finish_reason")
        shaped = {
            "index": choice["index"] if _is_count(choice.get("index")) else position,
            "delta": _delta(choice.get("delta")),
            # An unknown reason still says the choice is over.
            "finish_reason": finish if finish in FINISH_REASONS or finish is None else "stop",
        }
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict):
            shaped["logprobs"] = {"content": None, "refusal": None, **logprobs}
        choices.append(shaped)
    return choices


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
            "choices": _chunk_choices(chunk.get("choices")),
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
            prompt = body.prompt(await aserved_subnets() if "/" in body.model else None)
            if not body.stream:
                outcome = await call.answer(key, prompt)
                return Response(completion_json(call, body.model, outcome, n=body.n))
            stream = await call.open_stream(key, prompt)
            call.hand_off()
            events = sse_events(call, body.model, stream, include_usage=body.include_usage)
            response = StreamingHttpResponse(events, content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response


SUBNET_MODELS = ("auto", "best", "best:3", "top_n:1", "top_n:3")


async def _models() -> dict[str, dict[str, Any]]:
    """What GET /v1/models lists, by id: the chat strategies, each synced
    uid, then every other subnet's strategies (``<slug>/<strategy>``)."""
    directory = await adirectory()
    created = int(directory.synced_at.timestamp()) if directory.synced_at else 0
    ids = ["auto", "best", *(f"best:{n}" for n in TOP_N_MODELS[1:]), *(f"top_n:{n}" for n in TOP_N_MODELS)]
    ids += [f"uid:{n.uid}" for n in sorted(directory.ranked, key=lambda n: n.uid)]
    models = {i: _model(i, created) for i in ids}
    for subnet in (await aserved_subnets()).rows:
        if not subnet.is_chat_subnet:
            synced = int(subnet.metagraph_synced_at.timestamp()) if subnet.metagraph_synced_at else 0
            models |= {f"{subnet.slug}/{s}": _model(f"{subnet.slug}/{s}", synced) for s in SUBNET_MODELS}
    return models


def _model(ident: str, created: int) -> dict[str, Any]:
    return {"id": ident, "object": "model", "created": created, "owned_by": "bittensor"}


async def _named_model(model: str) -> dict[str, Any] | None:
    """A model the list does not spell out but a route takes: another
    strategy of a subnet, or a subnet named ``sn<netuid>``."""
    served = await aserved_subnets()
    subnet = served.named(model.rpartition("/")[0]) if "/" in model else None
    if subnet is None or subnet.is_chat_subnet:
        return None
    try:
        resolve_model(served, model, subnet.kind)
    except ModelNotFound:
        return None
    synced = int(subnet.metagraph_synced_at.timestamp()) if subnet.metagraph_synced_at else 0
    return _model(model, synced)


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
            found = (await _models()).get(model) or await _named_model(model)
            if found is None:
                raise ModelNotFound(f"The model {model!r} does not exist. {ModelNotFound.detail}")
            return Response(found)
