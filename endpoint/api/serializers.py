"""Typed parsing of request bodies: bad input is one clear 400.

Bodies are parsed with pydantic models: DRF serializers deep-copy their
fields for every message of every request, which showed up as a fifth of the
gateway's CPU per call under load.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from endpoint.core import errors
from endpoint.core.jsonbody import loads_bounded
from endpoint.core.models import Subnet
from endpoint.core.strategies import Strategy, distinct_uids, parse_strategy
from endpoint.core.subnets import ServedSubnets, resolve_model
from endpoint.gateway import Prompt

# Bounds on what a body may ask for, checked before any credit is held. The
# body's size (MAX_REQUEST_BYTES) bounds the text; these bound the work.
MAX_MESSAGES = 2048
MAX_UIDS = 4096  # before duplicates are dropped; unknown uids are refused anyway
MAX_ANSWERS = 128  # OpenAI's own bound on n


def read_json_object(request) -> dict[str, Any]:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise errors.PayloadTooLarge() from None
    if len(raw) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise errors.PayloadTooLarge()
    data = loads_bounded(raw)
    if not isinstance(data, dict):
        raise errors.InvalidBody("Request body must be a JSON object.")
    return data


def _describe(exc: pydantic.ValidationError) -> tuple[str, str | None]:
    """The first error as one line, and the field it is about ("messages[0].role"), if any."""
    first = exc.errors(include_url=False)[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    return (f"{where}: {first['msg']}" if where else first["msg"]), where or None


def parse_body(model: type[BaseModel], request) -> Any:
    try:
        return model.model_validate(read_json_object(request))
    except pydantic.ValidationError as exc:
        message, field = _describe(exc)
        raise errors.InvalidBody(message, param=field) from None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str


NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
PositiveInt = Annotated[int, Field(strict=True, ge=1)]


class ChatRequest(BaseModel):
    """The body of POST /chat (the seed's fields; unknown ones are ignored)."""

    model_config = ConfigDict(extra="ignore")

    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    uids: list[NonNegativeInt] | None = Field(default=None, min_length=1, max_length=MAX_UIDS)
    top_n: PositiveInt | None = None
    # Any strategy by name ("best:3", "top_n:2", "uids:1,2"); top_n and uids win over it.
    strategy: Strategy | None = None
    in_parallel: PositiveInt | None = None
    respond_on_first_success: StrictBool = True
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("strategy", mode="before")
    @classmethod
    def _named_strategy(cls, value: Any) -> Strategy | None:
        if value is None or isinstance(value, Strategy):
            return value
        if not isinstance(value, str):
            raise ValueError("must be a string such as 'best:3', 'top_n:2' or 'uids:1,2'")
        return parse_strategy(value)

    def prompt(self) -> Prompt:
        if self.top_n is not None:  # takes precedence over uids, as in the seed
            strategy = Strategy(top_n=self.top_n)
        elif self.uids is not None:
            strategy = Strategy(uids=distinct_uids(self.uids))
        else:
            strategy = self.strategy
        return Prompt(
            messages=[m.model_dump() for m in self.messages],
            strategy=strategy,
            timeout=self.timeout,
            in_parallel=self.in_parallel,
            respond_on_first_success=self.respond_on_first_success,
        )


# --- POST /v1/chat/completions -----------------------------------------------------


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list | None = None


# OpenAI's bounds on the request's parameters (CreateChatCompletionRequest in its
# openapi.json; tests check these against the vendored copy): a value OpenAI
# would refuse is refused here, before any credit is held or miner asked.
# Values within them go to the miners exactly as the client sent them.
def _number(low: float, high: float):
    return Annotated[float, Field(strict=True, ge=low, le=high, allow_inf_nan=False)] | None


def _integer(low: int | None = None, high: int | None = None):
    return Annotated[int, Field(strict=True, ge=low, le=high)] | None


INT64 = 2**63
MAX_STOP_SEQUENCES = 4
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
TOOL_TYPES = ("function", "custom")
TOOL_CHOICE_MODES = ("none", "auto", "required")
TOOL_CHOICE_TYPES = ("function", "allowed_tools", "custom")
# model names our strategy; stream is set per call; n is ours (each miner is asked for one answer).
NOT_FORWARDED = ("model", "messages", "stream", "n")


def _absent_by_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # absent, but not nullable: a null default would contradict the type


# A parameter OpenAI does not let be null: absent unless given.
NOT_NULL = Field(default=None, json_schema_extra=_absent_by_default)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = NOT_NULL
    include_obfuscation: StrictBool = NOT_NULL


def _named(value: Any, what: str) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError(f"{what} must be an object with a string 'name'")


class ChatCompletionRequest(BaseModel):
    """OpenAI's body. What it bounds is checked; everything but the model, the
    messages and ``n`` goes to the miners as given (temperature, tools, …).
    ``n`` is ours: n answers from n distinct miners of the model's, one
    choice each."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: StrictBool | None = None  # null is OpenAI's default: not streamed
    stream_options: StreamOptions | None = None
    temperature: _number(0, 2) = None
    top_p: _number(0, 1) = None
    presence_penalty: _number(-2, 2) = None
    frequency_penalty: _number(-2, 2) = None
    n: _integer(1, MAX_ANSWERS) = None
    top_logprobs: _integer(0, 20) = None
    seed: _integer(-INT64, INT64 - 1) = None
    max_tokens: _integer() = None
    max_completion_tokens: _integer() = None
    logprobs: StrictBool | None = None
    store: StrictBool | None = None
    parallel_tool_calls: StrictBool = NOT_NULL
    logit_bias: dict[str, Annotated[int, Field(strict=True)]] | None = None
    user: StrictStr = NOT_NULL
    stop: Any = None
    response_format: Any = None
    tools: Any = None
    tool_choice: Any = None
    _given: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_as_given(cls, data: Any, handler) -> ChatCompletionRequest:
        body = handler(data)
        body._given = data
        return body

    @field_validator("stop", mode="before")
    @classmethod
    def _stop(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if not (
            isinstance(value, list) and 1 <= len(value) <= MAX_STOP_SEQUENCES and all(isinstance(s, str) for s in value)
        ):
            raise ValueError(f"must be a string or a list of 1 to {MAX_STOP_SEQUENCES} strings")
        return value

    @field_validator("response_format", mode="before")
    @classmethod
    def _response_format(cls, value: Any) -> Any:
        kind = value.get("type") if isinstance(value, dict) else None
        if kind not in RESPONSE_FORMATS:
            raise ValueError(f"must be an object whose 'type' is one of {', '.join(RESPONSE_FORMATS)}")
        if kind == "json_schema":
            _named(value.get("json_schema"), "response_format.json_schema")
        return value

    @field_validator("tools", mode="before")
    @classmethod
    def _tools(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("must be a list of tools")
        for i, tool in enumerate(value):
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind not in TOOL_TYPES:
                raise ValueError(f"tools[{i}] must be an object whose 'type' is one of {', '.join(TOOL_TYPES)}")
            _named(tool.get(kind), f"tools[{i}].{kind}")
        return value

    @field_validator("tool_choice", mode="before")
    @classmethod
    def _tool_choice(cls, value: Any) -> Any:
        if value in TOOL_CHOICE_MODES:
            return value
        if not (isinstance(value, dict) and value.get("type") in TOOL_CHOICE_TYPES):
            raise ValueError(
                f"must be one of {', '.join(TOOL_CHOICE_MODES)}, or an object whose 'type' is one of "
                + ", ".join(TOOL_CHOICE_TYPES)
            )
        return value

    def forwarded(self) -> dict[str, Any]:
        """What the miners are sent besides the messages: the client's own values."""
        return {k: v for k, v in self._given.items() if k not in NOT_FORWARDED}

    @field_validator("n")
    @classmethod
    def _one_stream_one_miner(cls, n: int | None, info: ValidationInfo) -> int | None:
        # A stream relays the one miner that produced content first.
        if n is not None and n > 1 and info.data.get("stream"):
            raise ValueError("n > 1 can't be streamed (each answer comes from another miner); ask without stream")
        return n

    @property
    def include_usage(self) -> bool:
        return bool(self.stream) and self.stream_options is not None and self.stream_options.include_usage is True

    def prompt(self, served: ServedSubnets | None = None) -> Prompt:
        """The prompt; ``served`` (the subnets) resolves a model that names a
        chat subnet (``<slug>/<strategy>``)."""
        subnet, strategy = None, None
        if served is not None and "/" in self.model:
            subnet, strategy = resolve_model(served, self.model, Subnet.Kind.CHAT)
        else:
            strategy = strategy_for_model(self.model)
        return Prompt(
            messages=[m.model_dump(exclude_none=True) for m in self.messages],
            strategy=strategy,
            subnet=None if subnet is None or subnet.is_chat_subnet else subnet,
            answers=self.n or 1,
            extra=self.forwarded(),
        )


def strategy_for_model(model: str) -> Strategy | None:
    if model.strip().lower() == "auto":
        return None
    try:
        strategy = parse_strategy(model)
    except ValueError:
        strategy = None
    if strategy is None:
        raise errors.ModelNotFound(f"The model {model!r} does not exist. {errors.ModelNotFound.detail}")
    return strategy


# --- headers --------------------------------------------------------------------

ENDPOINT_VERSIONS = ("2023-05-19",)


def check_endpoint_version(request) -> None:
    version = request.headers.get("Endpoint-Version")
    if version is not None and version not in ENDPOINT_VERSIONS:
        raise errors.UnsupportedEndpointVersion(
            f"Unknown Endpoint-Version {version!r}; supported: {', '.join(ENDPOINT_VERSIONS)}."
        )
