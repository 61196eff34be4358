"""Typed bodies of the OpenAI routes next to chat: embeddings, images,
speech and transcriptions. OpenAI's bounds are checked here, before any
credit is held; each body says what its miners get and what the log keeps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
import pydantic
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from endpoint.core import errors
from endpoint.network.media import MAX_SPEECH_CHARS

from .serializers import NOT_NULL, _describe, _integer, _number

MAX_EMBEDDING_INPUTS = 2048  # OpenAI's bound on one request's inputs
MAX_IMAGES = 10
MAX_PROMPT_CHARS = 32000
SIZE = re.compile(r"(\d{2,4})x(\d{2,4})")
SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
TRANSCRIPTION_FORMATS = ("json", "text")


def _strict_text(limit: int):
    return Annotated[str, Field(strict=True, min_length=1, max_length=limit)]


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr
    input: Any
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: _integer(1, 4096) = None
    user: StrictStr = NOT_NULL

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value: Any) -> Any:
        """A string, a list of strings, a list of tokens or a list of token lists, none empty."""

        def tokens(item: Any) -> bool:
            return isinstance(item, list) and bool(item) and all(type(t) is int and t >= 0 for t in item)

        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and 0 < len(value) <= MAX_EMBEDDING_INPUTS:
            if all(isinstance(v, str) and v for v in value) or tokens(value) or all(tokens(v) for v in value):
                return value
        raise ValueError(
            f"must be a non-empty string, or a list of 1 to {MAX_EMBEDDING_INPUTS} non-empty strings or token arrays"
        )

    @property
    def inputs(self) -> list[Any]:
        """One item per vector asked for."""
        if isinstance(self.input, str) or all(type(t) is int for t in self.input):
            return [self.input]
        return list(self.input)

    @property
    def texts(self) -> list[str]:
        return [i for i in self.inputs if isinstance(i, str)]

    def payload(self) -> bytes:
        # The miners always answer floats; base64 is made here when asked.
        body: dict[str, Any] = {"input": self.input, "encoding_format": "float"}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        return orjson.dumps(body)

    def logged(self) -> list[dict[str, Any]]:
        text = "\n".join(i if isinstance(i, str) else orjson.dumps(i).decode() for i in self.inputs)
        return [{"role": "user", "content": text}]


class ImagesRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: _strict_text(MAX_PROMPT_CHARS)
    model: StrictStr = "auto"
    n: _integer(1, MAX_IMAGES) = None
    size: StrictStr | None = None
    quality: StrictStr | None = None
    style: StrictStr | None = None
    response_format: Literal["url", "b64_json"] | None = None
    user: StrictStr = NOT_NULL

    @field_validator("size")
    @classmethod
    def _size(cls, value: str | None) -> str | None:
        match = SIZE.fullmatch(value) if value not in (None, "auto") else None
        if value not in (None, "auto") and not (match and all(16 <= int(g) <= 4096 for g in match.groups())):
            raise ValueError("must be 'auto' or WIDTHxHEIGHT, e.g. '1024x1024'")
        return value

    @property
    def count(self) -> int:
        return self.n or 1

    def payload(self) -> bytes:
        # The miners always answer base64: a URL is served from here when asked.
        body: dict[str, Any] = {"prompt": self.prompt, "n": self.count, "response_format": "b64_json"}
        for name in ("size", "quality", "style"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return orjson.dumps(body)


class SpeechRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr
    input: _strict_text(MAX_SPEECH_CHARS)
    voice: StrictStr | dict
    instructions: _strict_text(MAX_SPEECH_CHARS) | None = None
    response_format: Literal[SPEECH_FORMATS] = "mp3"  # type: ignore[valid-type]
    speed: _number(0.25, 4.0) = None
    stream_format: Literal["audio"] | None = None  # SSE audio events are not relayed

    def payload(self) -> bytes:
        body: dict[str, Any] = {"input": self.input, "voice": self.voice, "response_format": self.response_format}
        for name in ("instructions", "speed"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return orjson.dumps(body)


class TranscriptionRequest(BaseModel):
    """The form fields of a transcription (the file is checked by the view)."""

    model_config = ConfigDict(extra="ignore")

    model: _strict_text(200)
    language: Annotated[str, Field(pattern=r"^[a-zA-Z]{2,3}(-[a-zA-Z]{2})?$")] | None = None
    prompt: _strict_text(MAX_PROMPT_CHARS) | None = None
    response_format: Literal[TRANSCRIPTION_FORMATS] = "json"  # type: ignore[valid-type]
    temperature: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None

    def fields(self) -> dict[str, str]:
        """What the miners get next to the file: they always answer JSON."""
        fields = {"response_format": "json"}
        for name in ("language", "prompt", "temperature"):
            if getattr(self, name) is not None:
                fields[name] = str(getattr(self, name))
        return fields


def parse_model(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        message, field = _describe(exc)
        raise errors.InvalidBody(message, param=field) from None


@dataclass(frozen=True)
class Upload:
    """A transcription's audio file, read."""

    name: str
    content_type: str
    data: bytes
    sha256: str


def upload_logged(upload: Upload, fields: dict[str, str]) -> list[dict[str, Any]]:
    """A transcription's request as the log keeps it: the file described, not stored."""
    size, digest = len(upload.data), upload.sha256
    described = f"[{upload.content_type} file {upload.name!r}, {size} bytes, sha256 {digest}]"
    prompt = fields.get("prompt")
    return [{"role": "user", "content": described + (f"\n{prompt}" if prompt else "")}]
