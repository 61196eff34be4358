"""Middleware of the pages and the management API (the gateway routes have
none: see endpoint.asgi).

NUL characters are refused, with a 400, in every query string and form of the
site: PostgreSQL cannot hold them in text, so a NUL reaching a filter or a
save would be a 500 (the JSON bodies get the same rule from
endpoint.core.jsonbody)."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction
from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.decorators import sync_and_async_middleware

NUL_REFUSED = "NUL characters (\\x00) are not accepted."
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def query_holds_nul(query) -> bool:
    return any("\x00" in name or any("\x00" in value for value in values) for name, values in query.lists())


def refusal(request):
    """A 400 for a request carrying a NUL in its path, query or form; else None."""
    form = request.method == "POST" and request.content_type in FORM_TYPES
    if not ("\x00" in request.path or query_holds_nul(request.GET) or (form and query_holds_nul(request.POST))):
        return None
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": NUL_REFUSED, "code": "InvalidRequestBody"}, status=400)
    return HttpResponseBadRequest(NUL_REFUSED, content_type="text/plain; charset=utf-8")


@sync_and_async_middleware
def refuse_nul_characters(get_response):
    if iscoroutinefunction(get_response):

        async def middleware(request):
            return refusal(request) or await get_response(request)

    else:

        def middleware(request):
            return refusal(request) or get_response(request)

    return middleware
