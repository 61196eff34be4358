"""The OpenAPI description of the gateway routes, as they behave.

Request bodies are the very pydantic models the views parse with (so the
schema cannot drift from validation); responses are described by the models
below, which mirror what the views and ``endpoint.api.errors`` build. Every
error status of DESIGN §3 is listed with the codes it carries. Plain Django
views (/health/*, /metrics) are added by the ``add_plain_views`` hook; DRF
views added later (/api/admin/…) appear on their own.
"""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from pydantic import BaseModel, ConfigDict, Field

from endpoint.core import errors
from endpoint.core.errors import RateLimiterUnavailable

from .serializers import ENDPOINT_VERSIONS, ChatCompletionRequest, ChatRequest

BEARER = [{"BearerAuth": []}]

# --- /chat (the seed's shapes) ------------------------------------------------


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class SeedChoice(BaseModel):
    index: int = Field(description="Position within `choices`, from 0.")
    message: AssistantMessage
    uid: int
    responder_hotkey: str
    response_ms: float


class SeedFailure(BaseModel):
    index: int = Field(description="Position within `failed_responses`, from 0.")
    error: str
    uid: int
    responder_hotkey: str
    response_ms: float


class ChatAnswer(BaseModel):
    choices: list[SeedChoice] = Field(description="One per miner that answered.")
    failed_responses: list[SeedFailure]


class SeedError(BaseModel):
    detail: str
    code: str


class SeedAllFailed(SeedError):
    failed_responses: list[SeedFailure]


# --- /v1 (OpenAI's shapes) ----------------------------------------------------


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = Field(description="The request field at fault, or null.")
    code: str
    failed_responses: list[SeedFailure] | None = Field(default=None, description="Only with 502 AllMinersFailed.")


class OpenAIError(BaseModel):
    error: OpenAIErrorBody


class CompletionChoice(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class BittensorAnswer(BaseModel):
    index: int = Field(description="The choice this miner gave.")
    uid: int
    hotkey: str
    response_ms: float


class BittensorInfo(BaseModel):
    uid: int
    hotkey: str
    response_ms: float
    failed: list[SeedFailure] = Field(description="The miners that failed.")
    answers: list[BittensorAnswer] | None = Field(
        default=None, description="With `n`: which miner gave each choice (n distinct miners, one choice each)."
    )
    usage: Literal["miner", "counted"] = Field(
        description="Where `usage` comes from: `miner` (the answering miner reported it) or `counted` "
        "(it did not, so the endpoint counted the tokens itself with tiktoken's cl100k_base)."
    )


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    bittensor: BittensorInfo
    usage: CompletionUsage = Field(
        description="The miner's report when it gave one, else counted (see `bittensor.usage`)."
    )


# One Server-Sent Event of a streamed completion.
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string"},
        "data": {
            "type": "string",
            "description": "A `chat.completion.chunk` as JSON (the first one with a `bittensor` field), "
            "with `stream_options.include_usage` a last chunk with empty `choices` and `usage`, "
            "or `[DONE]` to end the stream.",
        },
    },
}


class ModelEntry(BaseModel):
    id: str = Field(description="`auto`, `top_n:N` or `uid:N`.")
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelEntry]


# --- /health ------------------------------------------------------------------


class HealthLive(BaseModel):
    status: Literal["ok"]


class HealthCheck(BaseModel):
    ok: bool
    detail: str


class HealthReady(BaseModel):
    status: Literal["ok", "unavailable"]
    failing: list[str] = Field(description="Names of the failing checks (database, cache, metagraph, hotkey…).")
    checks: dict[str, HealthCheck]


# --- errors, by status ----------------------------------------------------------


def _codes(*classes: type[errors.ApiError]) -> str:
    return ", ".join(f"`{c.code}`" for c in classes)


BAD_REQUEST = _codes(
    errors.InvalidBody, errors.UnsupportedEndpointVersion, errors.UnknownUid, errors.FlaggedByModeration
)
UNAUTHORIZED = _codes(errors.APIKeyMissing, errors.APIKeyInvalid, errors.APIKeyDisabled, errors.APIKeyExpired)
UNAVAILABLE = _codes(
    errors.MetagraphNotSynced,
    errors.HotkeyNotConfigured,
    errors.NoMinerServing,
    errors.ModerationUnavailable,
    RateLimiterUnavailable,
)


def _error_responses(body: type[BaseModel], all_failed: type[BaseModel], *, prompts: bool) -> dict:
    """The error statuses of a route; ``prompts``: it sends a prompt to miners."""
    responses = {
        401: OpenApiResponse(body, description=f"{UNAUTHORIZED} (with `WWW-Authenticate: Bearer`)."),
        429: OpenApiResponse(body, description="`RateLimitExceeded` (with `Retry-After`)."),
        503: OpenApiResponse(body, description=UNAVAILABLE),
    }
    if prompts:
        responses |= {
            400: OpenApiResponse(body, description=BAD_REQUEST),
            402: OpenApiResponse(body, description=_codes(errors.APIKeyNotEnoughCredits)),
            413: OpenApiResponse(body, description=_codes(errors.PayloadTooLarge)),
            502: OpenApiResponse(all_failed, description="`AllMinersFailed`: every miner queried failed."),
        }
    return responses


def chat_schema(view_method):
    return extend_schema(
        operation_id="chat",
        summary="Prompt miners (seed-compatible)",
        description="Sends `messages` to the miners picked by `top_n` (wins), `uids`, or else the key's default "
        "strategy, and returns every answer and every failure.",
        tags=["gateway"],
        auth=BEARER,
        request={"application/json": ChatRequest},
        parameters=[
            OpenApiParameter(
                "Endpoint-Version", str, OpenApiParameter.HEADER, enum=list(ENDPOINT_VERSIONS), required=False
            )
        ],
        responses={200: ChatAnswer, **_error_responses(SeedError, SeedAllFailed, prompts=True)},
    )(view_method)


def _completions_responses() -> dict:
    responses = _error_responses(OpenAIError, OpenAIError, prompts=True)
    responses[400] = OpenApiResponse(OpenAIError, description=BAD_REQUEST)
    responses[404] = OpenApiResponse(OpenAIError, description="`model_not_found`: `model` names no strategy.")
    return responses


def completions_schema(view_method):
    return extend_schema(
        operation_id="chat_completions",
        summary="Chat completion (OpenAI-compatible)",
        description="`model` picks the miners: `auto`, `top_n:N`, `uids:a,b` or `uid:N`. With `stream: true` the "
        "answer is Server-Sent Events of `chat.completion.chunk`, ending with `data: [DONE]`.",
        tags=["openai"],
        auth=BEARER,
        request={"application/json": ChatCompletionRequest},
        responses={
            (200, "application/json"): ChatCompletion,
            (200, "text/event-stream"): OpenApiResponse(SSE_EVENT, description="With `stream: true`."),
            **_completions_responses(),
        },
    )(view_method)


models_schema = extend_schema(
    operation_id="models",
    summary="List models (strategies and synced uids)",
    tags=["openai"],
    auth=BEARER,
    responses={200: ModelList, **_error_responses(OpenAIError, OpenAIError, prompts=False)},
)

model_schema = extend_schema(
    operation_id="retrieve_model",
    summary="One model (a strategy or a synced uid) of the list",
    tags=["openai"],
    auth=BEARER,
    responses={
        200: ModelEntry,
        404: OpenApiResponse(OpenAIError, description="`model_not_found`: not one of GET /v1/models' ids."),
        **_error_responses(OpenAIError, OpenAIError, prompts=False),
    },
)


# --- the hook -----------------------------------------------------------------


def _component(model: type[BaseModel], components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components.setdefault(model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(description: str, ref: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def add_plain_views(result: dict, generator, request, public) -> dict:
    """Add the routes served by plain Django views, and the headers that come
    with 401 and 429 answers."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    if "ChatCompletionRequest" in components:
        model = components["ChatCompletionRequest"]["properties"]["model"]
        model["description"] = "The strategy: `auto`, `top_n:N`, `uids:a,b` or `uid:N` (404 otherwise)."
        model["examples"] = ["auto", "top_n:3", "uids:0,1", "uid:0"]
    live, ready = _component(HealthLive, components), _component(HealthReady, components)
    paths = result.setdefault("paths", {})
    paths["/health/live"] = {
        "get": {
            "operationId": "health_live",
            "summary": "The process is up",
            "tags": ["health"],
            "security": [{}],
            "responses": {"200": _json("Always, while the process serves.", live)},
        }
    }
    paths["/health/ready"] = {
        "get": {
            "operationId": "health_ready",
            "summary": "Ready to serve prompts: database, cache, metagraph age, hotkey",
            "tags": ["health"],
            "security": [{}],
            "responses": {
                "200": _json("Every check passes.", ready),
                "503": _json("A check fails; `failing` names it.", ready),
            },
        }
    }
    paths["/metrics"] = {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics",
            "tags": ["health"],
            "security": [{}],
            "responses": {
                "200": {
                    "description": "Prometheus text format.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "401": {
                    "description": "METRICS_TOKEN is set and was not given.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
            },
        }
    }
    headers = {
        "401": {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}},
        "429": {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}},
    }
    for operations in paths.values():
        for operation in operations.values():
            for status, extra in headers.items():
                response = operation.get("responses", {}).get(status)
                if response is not None and operation.get("security") == BEARER:
                    response.setdefault("headers", {}).update(extra)
    return result


class ManageError(BaseModel):
    """An error of the management API."""

    detail: str
    code: str
    errors: dict[str, Any] | None = Field(default=None, description="Per field, on a 400 for bad input.")


MANAGE_ERRORS = {
    "400": "Bad input: a field, a filter or the body (not JSON, nested too deep, a NUL character).",
    "401": "No credentials: sign in to the admin or send `Authorization: Token <token>`.",
    "403": "Signed in, but without the permission this needs (the message names it).",
    "404": "No such thing, or not yours.",
}
MANAGE_WRITE_ERRORS = {
    "409": "The state of the key forbids it (a prefix several keys share, credits that would go below zero).",
    "413": "The body is over MAX_REQUEST_BYTES.",
    "429": "Too many keys made in a while (KEY_CREATE_RATE).",
}


def add_management_errors(result: dict, generator, request, public) -> dict:
    """Every management operation can answer these, with one body shape; say so
    once here rather than on each view."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    ref = _component(ManageError, components)
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/") or path.startswith("/api/schema"):
            continue
        for method, operation in operations.items():
            documented = {**MANAGE_ERRORS, **(MANAGE_WRITE_ERRORS if method in ("post", "patch", "delete") else {})}
            if path == "/api/keys/" and method == "post":
                documented["402"] = "The chat balance does not have the credits asked for the new key."
            responses = operation.setdefault("responses", {})
            for status, description in documented.items():
                responses.setdefault(status, _json(description, ref))
    return result
