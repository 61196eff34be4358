"""What the local subnet's non-chat miners answer: pure functions from a
request body to an answer body, so `localnet.LocalSubnet` only routes,
verifies and misbehaves.

- embeddings: OpenAI's CreateEmbeddingResponse; each vector comes from the
  sha256 of its input alone (the same text gives the same unit vector on
  every miner), 64 dimensions unless ``dimensions`` asks otherwise.
- image: OpenAI's ImagesResponse with PNGs drawn by Pillow from the prompt
  (the same prompt, index and miner give the same bytes).
- speech: a short mono 16-bit 16 kHz WAV of tones seeded from the text,
  whatever ``response_format`` asks; the text rides along in the WAV's
  ``LIST``/``INFO``/``ICMT`` chunk, so a transcription miner can read it back.
- transcription: the text of that ``ICMT`` chunk when the upload is such a
  WAV, else a line naming the upload's size, type and sha256.

Every reader raises `BadRequest` for a body the kind cannot answer.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import math
import random
import struct
import time
from dataclasses import dataclass
from email.parser import HeaderParser
from typing import Any

import orjson
from PIL import Image, ImageDraw, ImageFont

EMBEDDING_DIMENSIONS = 64
MAX_DIMENSIONS = 4096
MAX_INPUTS = 2048
MAX_IMAGES = 10
DEFAULT_SIZE = (256, 256)  # small: the miners draw for tests, not for people
MAX_SIDE = 1024
SAMPLE_RATE = 16000
SECONDS_PER_WORD = 0.05
MIN_SECONDS = 0.25  # a few KiB at least, so a stream has more than one chunk
MAX_SECONDS = 5.0
TRANSCRIPTION_FORMATS = ("json", "text", "verbose_json")


class BadRequest(ValueError):
    """A body this kind of miner cannot answer; the message is for the caller (a 400)."""


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes

    def describe(self) -> dict[str, Any]:
        """The upload as a request log shows it: no bytes, their size and hash."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": len(self.data),
            "sha256": hashlib.sha256(self.data).hexdigest(),
        }


@dataclass(frozen=True)
class MediaRequest:
    body: dict[str, Any]  # what `SeenRequest.body` records: the JSON body, or the form with the file described
    upload: Upload | None = None  # transcription's file


def read_request(kind: str, raw: bytes, content_type: str) -> MediaRequest:
    """The request of a non-chat kind, checked; raises BadRequest."""
    if kind == "transcription":
        return transcription_request(raw, content_type)
    readers = {"embeddings": embeddings_request, "image": image_request, "speech": speech_request}
    if kind not in readers:
        raise ValueError(f"no media kind {kind!r}")
    return MediaRequest(readers[kind](raw))


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def refusal_body(uid: int) -> dict[str, Any]:
    """What an image or speech miner in "refuse" mode answers, with a 400, as OpenAI does."""
    return error_body(
        f"Miner {uid} rejected this request under its content policy.",
        code="content_policy_violation",
    )


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _words(text: str) -> int:
    return len(text.split())


# --- embeddings ------------------------------------------------------------------


def embeddings_request(raw: bytes) -> dict[str, Any]:
    body = _json_object(raw)
    _inputs(body.get("input"))
    dimensions = body.get("dimensions")
    if dimensions is not None and not (_is_int(dimensions) and 1 <= dimensions <= MAX_DIMENSIONS):
        raise BadRequest(f"dimensions must be an integer from 1 to {MAX_DIMENSIONS}")
    if body.get("encoding_format", "float") not in ("float", "base64"):
        raise BadRequest("encoding_format must be float or base64")
    return body


def _inputs(value: Any) -> list[str | list[int]]:
    """The inputs one by one: a string, a list of strings, a token array or a list of token arrays."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(_is_int(v) for v in value):
            return [value]
        if len(value) <= MAX_INPUTS and (
            all(isinstance(v, str) for v in value)
            or all(isinstance(v, list) and v and all(_is_int(t) for t in v) for v in value)
        ):
            return list(value)
    raise BadRequest(f"input must be a string, a token array, or a non-empty list (at most {MAX_INPUTS}) of either")


def embedding(item: str | list[int], dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A unit vector from the sha256 of the text (of a token array's JSON), expanded by counter."""
    seed = item.encode() if isinstance(item, str) else orjson.dumps(item)
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(seed + block.to_bytes(4, "big")).digest()
        values.extend(n / 2**31 - 1.0 for n in struct.unpack(">8I", digest))
        block += 1
    vector = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def embeddings_answer(body: dict[str, Any], *, empty: bool = False) -> dict[str, Any]:
    inputs = _inputs(body.get("input"))
    dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate([] if empty else inputs):
        vector = embedding(item, dimensions)
        encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    # Words (and tokens of token arrays), not tokens: a miner's own way of counting.
    tokens = sum(_words(item) if isinstance(item, str) else len(item) for item in inputs)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model") or "localnet",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --- images -------------------------------------------------------------------------


def image_request(raw: bytes) -> dict[str, Any]:
    body = _json_object(raw)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("prompt must be a non-empty string")
    n = body.get("n", 1)
    if not (_is_int(n) and 1 <= n <= MAX_IMAGES):
        raise BadRequest(f"n must be an integer from 1 to {MAX_IMAGES}")
    image_size(body)
    if body.get("response_format", "b64_json") not in ("b64_json", "url", None):
        raise BadRequest("response_format must be b64_json or url")
    return body


def image_size(body: dict[str, Any]) -> tuple[int, int]:
    """``size`` as (width, height): "WxH", each side capped at MAX_SIDE; "auto" or none is DEFAULT_SIZE."""
    size = body.get("size")
    if size is None or size == "auto":
        return DEFAULT_SIZE
    width, x, height = size.partition("x") if isinstance(size, str) else ("", "", "")
    if not (x and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise BadRequest('size must be "WIDTHxHEIGHT", e.g. "256x256"')
    return min(int(width), MAX_SIDE), min(int(height), MAX_SIDE)


@functools.cache
def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default_imagefont()  # the bitmap font: the same pixels whatever FreeType is installed


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)


def draw_png(prompt: str, index: int = 0, size: tuple[int, int] = DEFAULT_SIZE, uid: int | None = None) -> bytes:
    """A PNG of coloured shapes seeded from the prompt and the image's index,
    signed "miner <uid>" in its corner when a uid is given."""
    rng = random.Random(hashlib.sha256(f"{index}\0{prompt}".encode()).digest())
    width, height = size
    image = Image.new("RGB", size, _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(4, 9)):
        x0, x1 = sorted((rng.randrange(width), rng.randrange(width)))
        y0, y1 = sorted((rng.randrange(height), rng.randrange(height)))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=_colour(rng))
    if uid is not None:
        draw.text((3, 3), f"miner {uid}", fill=(255, 255, 255), font=_font())
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # speed over size: these are test pictures
    return out.getvalue()


def images_answer(body: dict[str, Any], uid: int, *, empty: bool = False) -> dict[str, Any]:
    """OpenAI's ImagesResponse; ``response_format`` "url" gets data: URLs (a miner hosts nothing)."""
    prompt = body["prompt"]
    size = image_size(body)
    as_url = body.get("response_format") == "url"
    data = []
    for index in range(0 if empty else body.get("n", 1)):
        encoded = base64.b64encode(draw_png(prompt, index, size, uid)).decode()
        image = {"url": "data:image/png;base64," + encoded} if as_url else {"b64_json": encoded}
        data.append({**image, "revised_prompt": f"Miner {uid} drew: {prompt}"})
    return {"created": int(time.time()), "data": data}


# --- speech ------------------------------------------------------------------------------


def speech_request(raw: bytes) -> dict[str, Any]:
    body = _json_object(raw)
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("input must be a non-empty string")
    if not isinstance(body.get("voice"), str | dict):  # OpenAI takes a name or {"id": ...}
        raise BadRequest("voice is required")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        raise BadRequest("speed must be a number from 0.25 to 4.0")
    return body


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def speech_wav(text: str, speed: float = 1.0) -> bytes:
    """A mono 16-bit PCM WAV: a tone per 50 ms seeded from the text, about
    ``SECONDS_PER_WORD`` a word (divided by ``speed``) between MIN_SECONDS and
    MAX_SECONDS, the text in a ``LIST``/``INFO``/``ICMT`` chunk before the samples."""
    seconds = min(MAX_SECONDS, max(MIN_SECONDS, _words(text) * SECONDS_PER_WORD / speed))
    frames = int(SAMPLE_RATE * seconds)
    segment = int(SAMPLE_RATE * SECONDS_PER_WORD)
    digest = hashlib.sha256(text.encode()).digest()
    samples: list[int] = []
    for start in range(0, frames, segment):
        step = 2 * math.pi * (220 + 3 * digest[(start // segment) % len(digest)]) / SAMPLE_RATE
        samples.extend(int(9000 * math.sin(step * i)) for i in range(min(segment, frames - start)))
    fmt = struct.pack("<HHIIHH", 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)  # PCM, mono, 16 kHz, 16-bit
    info = _chunk(b"LIST", b"INFO" + _chunk(b"ICMT", text.encode() + b"\0"))
    chunks = _chunk(b"fmt ", fmt) + info + _chunk(b"data", struct.pack(f"<{len(samples)}h", *samples))
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _riff_chunks(data: bytes, start: int, end: int) -> list[tuple[bytes, bytes]]:
    chunks = []
    while start + 8 <= end:
        tag, size = data[start : start + 4], struct.unpack("<I", data[start + 4 : start + 8])[0]
        chunks.append((tag, data[start + 8 : min(start + 8 + size, end)]))
        start += 8 + size + size % 2
    return chunks


def wav_info(data: bytes) -> tuple[str | None, float | None]:
    """(the ICMT comment, the duration in seconds) of a RIFF WAVE; (None, None) for anything else."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None, None
    comment = duration = None
    byte_rate = 0
    for tag, payload in _riff_chunks(data, 12, len(data)):
        if tag == b"fmt " and len(payload) >= 12:
            byte_rate = struct.unpack("<I", payload[8:12])[0]
        elif tag == b"LIST" and payload[:4] == b"INFO":
            for sub, value in _riff_chunks(payload, 4, len(payload)):
                if sub == b"ICMT":
                    comment = value.rstrip(b"\0").decode("utf-8", errors="replace")
        elif tag == b"data" and byte_rate:
            duration = len(payload) / byte_rate
    return comment, duration


# --- transcription -------------------------------------------------------------------------


def read_form(raw: bytes, content_type: str) -> tuple[dict[str, str], dict[str, Upload]]:
    """The fields and files of a multipart/form-data body (already read, to verify its signature)."""
    header = HeaderParser().parsestr(f"Content-Type: {content_type}\r\n\r\n")
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise BadRequest("the body must be multipart/form-data with a boundary")
    delimiter = b"\r\n--" + boundary.encode()
    parts = (b"\r\n" + raw).split(delimiter)
    if len(parts) < 2 or not parts[-1].startswith(b"--"):
        raise BadRequest("the multipart body does not end with its closing boundary")
    fields: dict[str, str] = {}
    files: dict[str, Upload] = {}
    for part in parts[1:-1]:
        head, blank, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not blank:
            raise BadRequest("a multipart part has no headers")
        headers = HeaderParser().parsestr(head.decode("utf-8", errors="replace") + "\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            raise BadRequest("a multipart part has no name")
        filename = headers.get_filename()
        if filename is None:
            fields[name] = content.decode("utf-8", errors="replace")
        else:
            kind = headers.get_content_type() if headers["content-type"] else "application/octet-stream"
            files[name] = Upload(filename, kind, content)
    return fields, files


def transcription_request(raw: bytes, content_type: str) -> MediaRequest:
    fields, files = read_form(raw, content_type)
    upload = files.get("file")
    if upload is None:
        raise BadRequest("file is required: the audio to transcribe, as a multipart file part")
    if fields.get("response_format", "json") not in TRANSCRIPTION_FORMATS:
        raise BadRequest(f"response_format must be one of {', '.join(TRANSCRIPTION_FORMATS)}")
    return MediaRequest({**fields, "file": upload.describe()}, upload)


def transcript(upload: Upload, uid: int) -> str:
    comment, _ = wav_info(upload.data)
    if comment is not None:
        return comment
    digest = hashlib.sha256(upload.data).hexdigest()[:12]
    return f"Miner {uid} heard {len(upload.data)} bytes of {upload.content_type} (sha256 {digest})"


def transcription_answer(form: dict[str, Any], upload: Upload, uid: int, *, empty: bool = False) -> tuple[bytes, str]:
    """(body, content type): JSON {"text"}, plain text, or verbose JSON, as ``response_format`` asks."""
    text = "" if empty else transcript(upload, uid)
    response_format = form.get("response_format", "json")
    if response_format == "text":
        return text.encode(), "text/plain; charset=utf-8"
    if response_format == "verbose_json":
        _, duration = wav_info(upload.data)
        verbose = {
            "task": "transcribe",
            "language": form.get("language") or "english",
            "duration": round(duration or 0.0, 3),
            "text": text,
        }
        return orjson.dumps(verbose), "application/json"
    return orjson.dumps({"text": text}), "application/json"
