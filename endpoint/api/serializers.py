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
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationInfo, field_validator

from endpoint.core import errors
from endpoint.core.jsonbody import loads_bounded
from endpoint.core.strategies import Strategy, distinct_uids, parse_strategy
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


class StreamOptions(BaseModel):
    """OpenAI's ChatCompletionStreamOptions; forwarded to the miner as given."""

    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's body; fields we don't use (temperature, max_tokens…) go to the
    miners. ``n`` is ours: n answers from n distinct miners of the model's,
    one choice each (each miner is asked for one)."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    n: StrictInt | None = Field(default=None, ge=1, le=MAX_ANSWERS)

    @field_validator("n")
    @classmethod
    def _one_stream_one_miner(cls, n: int | None, info: ValidationInfo) -> int | None:
        # A stream relays the one miner that produced content first.
        if n is not None and n > 1 and info.data.get("stream"):
            raise ValueError("n > 1 can't be streamed (each answer comes from another miner); ask without stream")
        return n

    @property
    def include_usage(self) -> bool:
        return self.stream and self.stream_options is not None and self.stream_options.include_usage is True

    def prompt(self) -> Prompt:
        extra = dict(self.model_extra or {})
        if self.stream_options is not None:
            extra["stream_options"] = self.stream_options.model_dump(exclude_unset=True)
        return Prompt(
            messages=[m.model_dump(exclude_none=True) for m in self.messages],
            strategy=strategy_for_model(self.model),
            answers=self.n or 1,
            extra=extra,
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
