"""An async DRF APIView for the gateway routes.

DRF's own dispatch is sync; adrf's hops to a thread for ``initial()``. The
gateway views have no DRF authenticators, permissions or throttles (keys,
credits and limits are checked by our services), so ``initial()`` does no I/O
and runs inline: no thread hop per request.
"""

from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from endpoint.gateway import GatewayCall


class FastJSONRenderer(JSONRenderer):
    """JSON by orjson: the gateway's bodies are plain dicts, lists, strings and
    numbers, and DRF's json.dumps with its encoder showed in profiles."""

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return b"" if data is None else orjson.dumps(data)


_RENDERER = FastJSONRenderer()


class AsyncAPIView(APIView):
    authentication_classes: tuple = ()
    permission_classes: tuple = ()
    throttle_classes: tuple = ()
    renderer_classes = (FastJSONRenderer,)
    gateway_call: GatewayCall | None = None

    async def options(self, request, *args, **kwargs):
        """204 with the methods the route takes. A browser's CORS preflight is
        answered before this by django-cors-headers, when CORS is on."""
        return Response(status=204, headers={"Allow": ", ".join(self.allowed_methods)})

    def perform_content_negotiation(self, request, force: bool = False):
        # One renderer, so nothing to negotiate: skip parsing the Accept header.
        return _RENDERER, _RENDERER.media_type

    def start_call(self, request, route: str) -> GatewayCall:
        self.gateway_call = GatewayCall(request, route)
        return self.gateway_call

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        # Rate-limit headers on every answer, errors and streams included.
        if self.gateway_call is not None:
            for name, value in self.gateway_call.response_headers().items():
                response.setdefault(name, value)
        return response

    async def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            handler = getattr(self, request.method.lower(), None)
            if request.method.lower() not in self.http_method_names or handler is None:
                handler = self.http_method_not_allowed
                response = handler(request, *args, **kwargs)
            else:
                response = await handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response
