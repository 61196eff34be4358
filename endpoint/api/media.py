"""The OpenAI routes of the kinds next to chat, each answered by the miners
of a subnet of that kind, through the same gateway as chat (keys, holds
and ledger, rate limits, moderation of text inputs, logs, strategies):

- POST /v1/embeddings
- POST /v1/images/generations (``b64_json``, or a ``url`` served from here for MEDIA_URL_SECONDS)
- POST /v1/audio/speech (audio bytes, relayed as the miner sends them)
- POST /v1/audio/transcriptions (a multipart upload up to MAX_UPLOAD_BYTES)
- GET /v1/media/<id> (an image answered as a ``url``)

``model`` names the subnet and the strategy (``sn19/best:2``, ``images/auto``;
a bare strategy means the first subnet of the route's kind).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import replace
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpResponse, StreamingHttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils import timezone
from rest_framework.response import Response

from endpoint.core import errors
from endpoint.core.config import aruntime_config
from endpoint.core.db import run_db
from endpoint.core.errors import openai_body
from endpoint.core.models import Subnet
from endpoint.core.subnets import aserved_subnets, resolve_model
from endpoint.core.tokens import count_text
from endpoint.gateway import GatewayCall, MediaPrompt
from endpoint.network.dispatch import Dispatch
from endpoint.network.media import (
    Picture,
    base64_vector,
    embeddings_wire,
    form_data,
    image_wire,
    speech_wire,
    transcription_wire,
)
from logs.media import do_keep_media, served_media
from logs.models import MediaFile

from .base import AsyncAPIView
from .media_bodies import (
    EmbeddingsRequest,
    ImagesRequest,
    SpeechRequest,
    TranscriptionRequest,
    Upload,
    parse_model,
    upload_logged,
)
from .media_schema import (
    embeddings_schema,
    images_schema,
    media_file_schema,
    speech_schema,
    transcriptions_schema,
)
from .serializers import parse_body


def _bittensor(outcome: Dispatch) -> dict[str, Any]:
    """Who answered and who failed, as /v1/chat/completions says it."""
    winner = outcome.successes[0]
    failed = outcome.seed_json()["failed_responses"]
    return {"uid": winner.uid, "hotkey": winner.hotkey, "response_ms": round(winner.response_ms, 1), "failed": failed}


async def _target(model: str, kind: str):
    return resolve_model(await aserved_subnets(), model, kind)


class MediaView(AsyncAPIView):
    error_body = staticmethod(openai_body)


class EmbeddingsView(MediaView):
    @embeddings_schema
    async def post(self, request):
        async with self.start_call(request, route="/v1/embeddings") as call:
            key = await call.identify(request.headers.get("Authorization"))
            body = parse_body(EmbeddingsRequest, request)
            subnet, strategy = await _target(body.model, Subnet.Kind.EMBEDDINGS)
            wire = embeddings_wire(len(body.inputs), body.dimensions)
            media = MediaPrompt(subnet, body.payload(), wire, body.texts, body.logged(), strategy)
            outcome = await call.answer_media(key, media)
            answer = outcome.successes[0].answer
            tokens = _prompt_tokens(answer.get("usage"), body.inputs)
            call.log.prompt_tokens, call.log.completion_tokens = tokens, 0
            encode = base64_vector if body.encoding_format == "base64" else list
            data = [
                {"object": "embedding", "index": i, "embedding": encode(vector)}
                for i, vector in enumerate(answer["vectors"])
            ]
            usage = {"prompt_tokens": tokens, "total_tokens": tokens}
            return Response(
                {"object": "list", "data": data, "model": body.model, "usage": usage, "bittensor": _bittensor(outcome)}
            )


def _prompt_tokens(reported: Any, inputs: list[Any]) -> int:
    """The miner's count when it gave a whole number, else ours (a token array counts its length)."""
    given = reported.get("prompt_tokens") if isinstance(reported, dict) else None
    if type(given) is int and given >= 0:
        return given
    return sum(count_text(i) if isinstance(i, str) else len(i) for i in inputs)


class ImagesView(MediaView):
    @images_schema
    async def post(self, request):
        async with self.start_call(request, route="/v1/images/generations") as call:
            key = await call.identify(request.headers.get("Authorization"))
            body = parse_body(ImagesRequest, request)
            subnet, strategy = await _target(body.model, Subnet.Kind.IMAGE)
            logged = [{"role": "user", "content": body.prompt}]
            media = MediaPrompt(subnet, body.payload(), image_wire(body.count), [body.prompt], logged, strategy)
            media.units = body.count
            outcome = await call.answer_media(key, media)
            pictures: list[Picture] = outcome.successes[0].answer
            by_url, retain = body.response_format != "b64_json", await _retaining()
            kept = await _kept(call, [(p.data, p.content_type) for p in pictures], by_url=by_url, retain=retain)
            if by_url:
                data = [{"url": request.build_absolute_uri(reverse("media-file", args=[row.pk]))} for row in kept]
            else:
                data = [{"b64_json": base64.b64encode(p.data).decode()} for p in pictures]
            for item, picture in zip(data, pictures, strict=True):
                if picture.revised_prompt is not None:
                    item["revised_prompt"] = picture.revised_prompt
            return Response({"created": int(time.time()), "data": data, "bittensor": _bittensor(outcome)})


async def _kept(call: GatewayCall, items: list[tuple[bytes, str]], **how) -> list[MediaFile]:
    """Store a call's media (``logs.media``). If it can't be stored, nothing is
    charged and the client is told to retry: an image URL must work."""
    try:
        return await run_db(do_keep_media, call.log.id, items, **how)
    except Exception as failure:
        call.undo_charge()
        raise errors.DatabaseUnavailable() from failure


async def _keep_audio(request_id, data: bytes, content_type: str) -> None:
    await run_db(do_keep_media, request_id, [(data, content_type)], retain=True)


async def _retaining() -> bool:
    return (await aruntime_config()).retain_media


class SpeechView(MediaView):
    @speech_schema
    async def post(self, request):
        async with self.start_call(request, route="/v1/audio/speech") as call:
            key = await call.identify(request.headers.get("Authorization"))
            body = parse_body(SpeechRequest, request)
            subnet, strategy = await _target(body.model, Subnet.Kind.SPEECH)
            texts = [body.input, *([body.instructions] if body.instructions else [])]
            logged = [{"role": "user", "content": body.input}]
            media = MediaPrompt(subnet, body.payload(), speech_wire(), texts, logged, strategy)
            stream = await call.open_media_stream(key, media)
            if await _retaining():
                stream.keep = lambda data, content_type: run_db(
                    do_keep_media, call.log.id, [(data, content_type)], retain=True
                )
            call.hand_off()
            response = StreamingHttpResponse(stream.chunks(), content_type=stream.content_type)
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return response


class TranscriptionsView(MediaView):
    @transcriptions_schema
    async def post(self, request):
        async with self.start_call(request, route="/v1/audio/transcriptions") as call:
            key = await call.identify(request.headers.get("Authorization"))
            # Parsing, reading and hashing up to MAX_UPLOAD_BYTES: off the event loop.
            fields, upload = await asyncio.to_thread(_upload, request)
            body = parse_model(TranscriptionRequest, fields)
            subnet, strategy = await _target(body.model, Subnet.Kind.TRANSCRIPTION)
            data, content_type = upload.data, upload.content_type
            payload, form_type = form_data(body.fields(), "file", upload.name or "audio", content_type, data)
            wire = replace(transcription_wire(), content_type=form_type)
            texts = [body.prompt] if body.prompt else []
            logged = upload_logged(upload, body.fields())
            outcome = await call.answer_media(key, MediaPrompt(subnet, payload, wire, texts, logged, strategy))
            if await _retaining():
                await _kept(call, [(data, content_type)], source=MediaFile.Source.UPLOAD, retain=True)
            text = outcome.successes[0].answer["text"]
            call.log.prompt_tokens, call.log.completion_tokens = 0, count_text(text)
            if body.response_format == "text":
                return HttpResponse(text, content_type="text/plain; charset=utf-8")
            return Response({"text": text, "bittensor": _bittensor(outcome)})


def _upload(request) -> tuple[dict[str, str], Upload]:
    """The form fields and the ``file`` of a multipart upload, read, or a 400 saying what is missing."""
    django_request = request._request
    if not (django_request.content_type or "").startswith("multipart/form-data"):
        raise errors.InvalidBody("Send the audio as multipart/form-data with a 'file' part.", param="file")
    try:
        files, post = django_request.FILES, django_request.POST
    except (MultiPartParserError, TooManyFieldsSent) as exc:
        raise errors.InvalidBody(f"The multipart body could not be read: {exc}", param="file") from None
    except RequestDataTooBig:
        raise errors.PayloadTooLarge() from None
    upload = files.get("file")
    if upload is None or not upload.size:
        raise errors.InvalidBody("file: a non-empty audio file is required.", param="file")
    fields = {name: post.get(name) for name in post}
    texts = [*fields, *fields.values(), upload.name or "", upload.content_type or ""]
    if any("\x00" in text for text in texts):
        # As in JSON bodies: PostgreSQL can't keep NUL in the log, so it is refused here.
        raise errors.InvalidBody("The form's fields and file name must not contain NUL characters.", param="file")
    data = upload.read()
    content_type = upload.content_type or "application/octet-stream"
    upload = Upload(upload.name or "", content_type, data, hashlib.sha256(data).hexdigest())
    return fields, upload


class MediaFileView(MediaView):
    """GET /v1/media/<id>: an image answered as a ``url``, until it expires."""

    @media_file_schema
    async def get(self, request, media_id):
        found = await run_db(served_media, media_id)
        if found is None:
            raise errors.MediaNotFound()
        content_type, data, expires_at = found
        left = max(0, int((expires_at - timezone.now()).total_seconds()))
        response = HttpResponse(bytes(data), content_type=content_type)
        response["Cache-Control"] = f"private, max-age={left}"
        return response
