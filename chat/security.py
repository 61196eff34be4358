"""Content-Security-Policy for the browser pages (chat, keys, accounts).

The pages load scripts and styles only from our own static files, so even a
sanitizer slip in rendered miner text could not run script. The API routes and
the admin (whose templates others own) are left as they are."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_PREFIXES = ("/app/", "/accounts/")


def _with_policy(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if request.path == "/" or request.path.startswith(PAGE_PREFIXES):
        response.setdefault("Content-Security-Policy", POLICY)
    return response


@sync_and_async_middleware
def ContentSecurityPolicyMiddleware(get_response: Callable):
    # Both flavours, so the async pages (the streaming chat) take no thread hop here.
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponse:
            return _with_policy(request, await get_response(request))

    else:

        def middleware(request: HttpRequest) -> HttpResponse:
            return _with_policy(request, get_response(request))

    return middleware
