"""The one place errors become responses: the seed's ``{"detail", "code"}``
on /chat, OpenAI's ``{"error": {"message", "type", "code"}}`` on /v1."""

from __future__ import annotations

import logging

from rest_framework import exceptions
from rest_framework.response import Response

from endpoint.errors import ApiError

log = logging.getLogger("endpoint.api")


def as_api_error(exc: Exception) -> ApiError | None:
    """Our error for ``exc``: ApiErrors as they are, DRF's own translated."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, exceptions.APIException):
        error = ApiError(str(exc.detail) if not isinstance(exc.detail, (dict, list)) else "Invalid request.")
        error.status, error.code = exc.status_code, type(exc).__name__
        return error
    return None


def seed_body(error: ApiError) -> dict:
    return {"detail": error.detail, "code": error.code, **error.extra}


def openai_body(error: ApiError) -> dict:
    return {"error": {"message": error.detail, "type": error.openai_type, "code": error.code, **error.extra}}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    error = as_api_error(exc)
    if error is None:
        return None  # a bug: Django's 500 handling and logging take over
    view = context.get("view")
    shape = getattr(view, "error_body", seed_body)
    log.info("api error %s %s: %s", error.status, error.code, error.detail)
    return Response(shape(error), status=error.status, headers=error.headers())


class RouteNotFound(ApiError):
    status, code = 404, "not_found"
    detail = "No such route."


def not_found(request, exception=None):
    """Django's 404 for a URL no route matches: JSON on the API's paths (in
    the route's shape), the usual page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    path = request.path
    error = RouteNotFound(f"No such route: {request.method} {path}")
    if path.startswith("/v1/"):
        return JsonResponse(openai_body(error), status=404)
    if path.startswith(("/api/", "/chat")):
        return JsonResponse(seed_body(error), status=404)
    return page_not_found(request, exception)
