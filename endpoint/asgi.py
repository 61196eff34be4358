"""The ASGI application.

Pages and the admin get Django's full middleware stack. The gateway routes
(/chat, /v1/…, /health/…) are DRF views that need none of it: no session,
cookie, CSRF or message handling. Under ASGI each of Django's built-in
middlewares runs its hooks through ``sync_to_async`` (a thread hop each way),
which cost more CPU per API call than the rest of the gateway; so those
routes go through a handler with an empty middleware chain. Same project,
same URLconf, same views.
"""

import os

from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "endpoint.settings")

site = get_asgi_application()


class GatewayASGIHandler(ASGIHandler):
    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(get_response)


gateway = GatewayASGIHandler()


def is_gateway_path(path: str) -> bool:
    return path == "/chat" or path.startswith(("/v1/", "/health/"))


async def application(scope, receive, send):
    if scope["type"] == "http" and is_gateway_path(scope["path"]):
        await gateway(scope, receive, send)
    else:
        await site(scope, receive, send)
