"""POST /chat — the seed-compatible route."""

from __future__ import annotations

from rest_framework.response import Response

from endpoint import errors

from .base import AsyncAPIView
from .errors import seed_body
from .schema import chat_schema
from .serializers import ChatRequest, parse_body

ENDPOINT_VERSIONS = ("2023-05-19",)


def check_endpoint_version(request) -> None:
    version = request.headers.get("Endpoint-Version")
    if version is not None and version not in ENDPOINT_VERSIONS:
        raise errors.UnsupportedEndpointVersion(
            f"Unknown Endpoint-Version {version!r}; supported: {', '.join(ENDPOINT_VERSIONS)}."
        )


class ChatView(AsyncAPIView):
    error_body = staticmethod(seed_body)

    @chat_schema
    async def post(self, request):
        async with self.start_call(request, route="/chat") as call:
            check_endpoint_version(request)
            key = await call.authenticate(request.headers.get("Authorization"))
            body = parse_body(ChatRequest, request)
            outcome = await call.answer(key, body.prompt())
            return Response(outcome.seed_json())
