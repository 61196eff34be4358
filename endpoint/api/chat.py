"""POST /chat — the seed-compatible route."""

from __future__ import annotations

from rest_framework.response import Response

from endpoint.core.errors import seed_body

from .base import AsyncAPIView
from .schema import chat_schema
from .serializers import ChatRequest, check_endpoint_version, parse_body


class ChatView(AsyncAPIView):
    error_body = staticmethod(seed_body)

    @chat_schema
    async def post(self, request):
        async with self.start_call(request, route="/chat") as call:
            check_endpoint_version(request)
            key = await call.identify(request.headers.get("Authorization"))
            body = parse_body(ChatRequest, request)
            outcome = await call.answer(key, body.prompt())
            return Response(outcome.seed_json())
