"""The OpenAPI description of the routes of the kinds next to chat
(endpoint.api.media), as they behave: request bodies are the pydantic
models the views parse with, responses mirror what the views build."""

from __future__ import annotations

from typing import Literal

from drf_spectacular.utils import OpenApiResponse, extend_schema
from pydantic import BaseModel, Field

from .media_bodies import EmbeddingsRequest, ImagesRequest, SpeechRequest, TranscriptionRequest
from .schema import BAD_REQUEST, BEARER, OpenAIError, SeedFailure, _error_responses

BINARY = {"type": "string", "format": "binary"}
MODEL_NOT_FOUND = "`model_not_found`: `model` names no subnet of the route's kind, or no strategy."


class MinerInfo(BaseModel):
    uid: int
    hotkey: str
    response_ms: float
    failed: list[SeedFailure] = Field(description="The miners that failed.")


class EmbeddingItem(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 float32s with `encoding_format: base64`.")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"]
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage
    bittensor: MinerInfo


class ImageItem(BaseModel):
    b64_json: str | None = Field(default=None, description="With `response_format: b64_json`.")
    url: str | None = Field(default=None, description="Otherwise: served by this endpoint for MEDIA_URL_SECONDS.")
    revised_prompt: str | None = None


class ImagesAnswer(BaseModel):
    created: int
    data: list[ImageItem]
    bittensor: MinerInfo


class TranscriptionAnswer(BaseModel):
    text: str
    bittensor: MinerInfo


def _responses() -> dict:
    responses = _error_responses(OpenAIError, OpenAIError, prompts=True)
    responses[400] = OpenApiResponse(OpenAIError, description=BAD_REQUEST)
    responses[404] = OpenApiResponse(OpenAIError, description=MODEL_NOT_FOUND)
    return responses


def _route(operation_id: str, summary: str, request: dict, ok: dict):
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        tags=["openai"],
        auth=BEARER,
        request=request,
        responses={**ok, **_responses()},
    )


embeddings_schema = _route(
    "embeddings",
    "Embeddings from an embeddings subnet (OpenAI-compatible)",
    {"application/json": EmbeddingsRequest},
    {200: EmbeddingList},
)
images_schema = _route(
    "images_generations",
    "Images from an image subnet (OpenAI-compatible)",
    {"application/json": ImagesRequest},
    {200: ImagesAnswer},
)
speech_schema = _route(
    "audio_speech",
    "Speech from a speech subnet, relayed as it comes (OpenAI-compatible)",
    {"application/json": SpeechRequest},
    {(200, "audio/*"): OpenApiResponse(BINARY, description="The miner's audio, in its content type.")},
)
TRANSCRIPTION_FORM = {
    "type": "object",
    "required": ["file", "model"],
    "properties": {
        "file": {**BINARY, "description": "The audio, up to MAX_UPLOAD_BYTES."},
        **{
            name: field
            for name, field in TranscriptionRequest.model_json_schema()["properties"].items()
            if name != "file"
        },
    },
}
transcriptions_schema = _route(
    "audio_transcriptions",
    "Text from audio, by a transcription subnet (OpenAI-compatible)",
    {"multipart/form-data": TRANSCRIPTION_FORM},
    {
        (200, "application/json"): TranscriptionAnswer,
        (200, "text/plain"): OpenApiResponse({"type": "string"}, description="With `response_format: text`."),
    },
)
media_file_schema = extend_schema(
    operation_id="media_file",
    summary="An image answered as a `url`, until it expires",
    tags=["openai"],
    auth=[],
    responses={
        (200, "image/*"): OpenApiResponse(BINARY, description="The image's bytes."),
        404: OpenApiResponse(OpenAIError, description="`not_found`: no such image, or it expired."),
    },
)
