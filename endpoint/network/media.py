"""How miners of the kinds next to chat answer, and what makes an answer
theirs: each kind's ``Wire`` (see ``protocol``) with a reader that turns a
miner's body into what the route relays, or a MinerFailure. The log keeps a
description of media (type, size, hash), never the bytes."""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import secrets
import struct
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings

from endpoint.core.errors import MinerFailure

from .protocol import Wire

JSON = "application/json"

# What an image is, by its first bytes: miners answer PNG, JPEG, WebP or GIF.
IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(data: bytes) -> str | None:
    for magic, content_type in IMAGE_MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


# OpenAI's bound on the text of one speech clip, which speech miners follow.
MAX_SPEECH_CHARS = 4096


def described(content_type: str, size: int, sha256: str) -> str:
    """A piece of media as the log keeps it: type, size and hash, no bytes."""
    return f"{content_type}, {size} bytes, sha256 {sha256}"


def describe(data: bytes, content_type: str) -> str:
    return described(content_type, len(data), hashlib.sha256(data).hexdigest())


def _json(body: bytes, status: int) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MinerFailure("miner answered with invalid JSON", status) from None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- embeddings -----------------------------------------------------------------------


def embeddings_wire(inputs: int, dimensions: int | None) -> Wire:
    """One vector per input, in order, all of one length (``dimensions`` if asked)."""

    def read(body: bytes, content_type: str, status: int) -> tuple[str, Any]:
        answer = _json(body, status)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or not data:
            raise MinerFailure("miner answered with no embeddings", status)
        if len(data) != inputs:
            raise MinerFailure(f"miner answered {len(data)} embeddings for {inputs} inputs", status)
        ordered = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
        vectors = [d.get("embedding") if isinstance(d, dict) else None for d in ordered]
        if not all(isinstance(v, list) and v and all(_number(x) for x in v) for v in vectors):
            raise MinerFailure("miner answered an embedding that is not a list of numbers", status)
        sizes = {len(v) for v in vectors}
        if len(sizes) != 1 or (dimensions is not None and sizes != {dimensions}):
            raise MinerFailure(f"miner answered embeddings of {sorted(sizes)} dimensions", status)
        log = f"{len(vectors)} embedding(s) of {sizes.pop()} dimensions"
        return log, {"vectors": vectors, "usage": answer.get("usage")}

    return Wire(JSON, settings.MAX_MINER_RESPONSE_BYTES, read)


def base64_vector(vector: list[float]) -> str:
    """An embedding as OpenAI's ``encoding_format: base64`` sends it: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


# --- images ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Picture:
    data: bytes
    content_type: str
    revised_prompt: str | None


def image_wire(n: int) -> Wire:
    """``n`` images, each base64 in ``b64_json`` and really an image."""

    def read(body: bytes, content_type: str, status: int) -> tuple[str, Any]:
        answer = _json(body, status)
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or not data:
            raise MinerFailure("miner answered with no image", status)
        if len(data) != n:
            raise MinerFailure(f"miner answered {len(data)} images for {n} asked", status)
        pictures = []
        for item in data:
            encoded = item.get("b64_json") if isinstance(item, dict) else None
            try:
                raw = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
            except (binascii.Error, ValueError):
                raw = b""
            kind = image_type(raw)
            if kind is None:
                raise MinerFailure("miner answered something that is not an image", status)
            revised = item.get("revised_prompt")
            pictures.append(Picture(raw, kind, revised if isinstance(revised, str) else None))
        return "; ".join(describe(p.data, p.content_type) for p in pictures), pictures

    return Wire(JSON, settings.MAX_MEDIA_RESPONSE_BYTES, read)


# --- speech ---------------------------------------------------------------------------


def speech_wire() -> Wire:
    """Audio bytes, relayed as they come: the reader sees the first ones."""

    def read(first: bytes, content_type: str, status: int) -> tuple[str, Any]:
        if not content_type.startswith("audio/") and content_type != "application/octet-stream":
            raise MinerFailure(f"miner answered {content_type or 'no content type'}, not audio", status)
        if not first:
            raise MinerFailure("miner answered with empty audio", status)
        return content_type, None

    return Wire(JSON, settings.MAX_MEDIA_RESPONSE_BYTES, read, streamed=True)


# What audio is, by its first bytes, for a miner that called it application/octet-stream.
AUDIO_MAGIC = (
    (b"ID3", "audio/mpeg"),
    (b"\xff\xfb", "audio/mpeg"),
    (b"\xff\xf3", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
)


def audio_type(data: bytes, content_type: str) -> str:
    """The type to serve a clip as: the miner's, unless it named none of audio's."""
    if content_type.startswith("audio/"):
        return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    for magic, kind in AUDIO_MAGIC:
        if data.startswith(magic):
            return kind
    return content_type


@dataclass(frozen=True)
class Clip:
    data: bytes
    content_type: str


def whole_speech_wire() -> Wire:
    """Speech read whole, for a client that keeps the clip rather than relay
    it (the browser chat): the same checks as ``speech_wire``, and a miner
    that breaks off mid-clip is that miner's failure, so the strategy moves
    on and nothing is charged for half a clip."""
    check = speech_wire().read

    def read(body: bytes, content_type: str, status: int) -> tuple[str, Any]:
        check(body, content_type, status)
        clip = Clip(body, audio_type(body, content_type))
        return describe(clip.data, clip.content_type), clip

    return Wire(JSON, settings.MAX_MEDIA_RESPONSE_BYTES, read)


# --- transcription --------------------------------------------------------------------


def transcription_wire() -> Wire:
    """``{"text": …}``, the words the miner heard."""

    def read(body: bytes, content_type: str, status: int) -> tuple[str, Any]:
        answer = _json(body, status)
        text = answer.get("text") if isinstance(answer, dict) else None
        if not isinstance(text, str):
            raise MinerFailure("miner answer is not a transcription", status)
        if not text.strip():
            raise MinerFailure("miner answered with empty content", status)
        return text, answer

    return Wire(JSON, settings.MAX_MINER_RESPONSE_BYTES, read)


def form_data(
    fields: dict[str, str], file_field: str, filename: str, content_type: str, data: bytes
) -> tuple[bytes, str]:
    """A multipart/form-data body (and its content type) for the miners, made
    here so the bytes signed are the bytes sent."""
    boundary = secrets.token_hex(16)
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode())
    safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "") or "audio"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{safe_name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    )
    parts.append(head.encode() + data)
    body = b"\r\n".join(parts) + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
