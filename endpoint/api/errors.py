"""The one place errors become API responses, in the shape of the API that
was called: the seed's ``{"detail", "code"}`` on /chat, OpenAI's
``{"error": {"message", "type", "param", "code"}}`` on /v1, and on the management API
the seed's shape plus ``"errors": {field: [messages]}`` for bad input.

Our ``ApiError``s answer as they are; DRF's and Django's own exceptions are
first made into one. Anything else is a bug: Django's 500 handling and
logging take over."""

from __future__ import annotations

import logging

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from endpoint.core.errors import (
    ApiError,
    InputError,
    from_database,
    is_openai_path,
    json_response,
    log_answered,
    openai_body,
    seed_body,
)

log = logging.getLogger("endpoint.api")


class FrameworkError(ApiError):
    """One of DRF's exceptions (not authenticated, not allowed, not found…) as ours."""

    def __init__(self, exc: exceptions.APIException) -> None:
        detail = exc.detail
        super().__init__(str(detail) if not isinstance(detail, dict | list) else "Invalid request.")
        self.status = exc.status_code
        self.code = getattr(detail, "code", None) or exc.default_code
        self._headers = {}
        if getattr(exc, "auth_header", None):
            self._headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            self._headers["Retry-After"] = str(int(exc.wait))

    def headers(self) -> dict[str, str]:
        return self._headers


def as_api_error(exc: Exception) -> ApiError | None:
    """Our error for ``exc``, or None for a bug."""
    if isinstance(exc, ApiError):
        return exc
    if (unavailable := from_database(exc)) is not None:
        log.warning("database unavailable: %s", exc)
        return unavailable
    if isinstance(exc, ObjectDoesNotExist | Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        fields = _field_errors(exc.detail)
        param = next((name for name in fields if name != "non_field_errors"), None)
        return InputError(_summary(fields), param=param, errors=fields)
    if isinstance(exc, exceptions.APIException):
        return FrameworkError(exc)
    return None


def manage_body(error: ApiError) -> dict:
    """The seed's shape; bad input also says which field, so a script can act on it."""
    body = seed_body(error)
    if isinstance(error, InputError) and error.status == 400:
        body["code"] = "invalid"
        body.setdefault("errors", {"non_field_errors": [error.detail]})
    return body


def exception_handler(exc: Exception, context: dict) -> Response | None:
    error = as_api_error(exc)
    if error is None:
        return None
    set_rollback()
    shape = getattr(context.get("view"), "error_body", seed_body)
    response = Response(shape(error), status=error.status, headers=error.headers())
    return log_answered(context.get("request"), error, response)


def _field_errors(data: object) -> dict:
    if isinstance(data, dict):
        return data
    return {"non_field_errors": data if isinstance(data, list) else [data]}


def _first_message(errors: object) -> str:
    while isinstance(errors, dict | list) and errors:
        errors = next(iter(errors.values())) if isinstance(errors, dict) else errors[0]
    return str(errors) if errors else "Invalid input."


def _summary(errors: dict) -> str:
    """One readable line: "credits: Ensure this value is greater than …"."""
    parts = []
    for field, messages in errors.items():
        message = _first_message(messages)
        parts.append(message if field == "non_field_errors" else f"{field}: {message}")
    return "; ".join(parts) or "Invalid input."


class RouteNotFound(ApiError):
    status, code = 404, "not_found"
    detail = "No such route."


def not_found(request, exception=None):
    """Django's 404 for a URL no route matches: JSON on the API's paths (in
    the route's shape), the usual page elsewhere."""
    from django.views.defaults import page_not_found

    path = request.path
    error = RouteNotFound(f"No such route: {request.method} {path}")
    if is_openai_path(path):
        return json_response(error, openai_body, request)
    if path.startswith(("/api/", "/chat")):
        return json_response(error, seed_body, request)
    return page_not_found(request, exception)


class InternalError(ApiError):
    status, code = 500, "InternalError"
    detail = "The server failed to answer; the error is logged."
    openai_type = "api_error"


def server_error(request):
    """Django's 500 for a bug: JSON on the API's paths (in the route's shape), the usual page elsewhere."""
    from django.views.defaults import server_error as page

    path = request.path
    if is_openai_path(path):
        return json_response(InternalError(), openai_body)
    if path.startswith(("/api/", "/chat")):
        return json_response(InternalError(), seed_body)
    return page(request)
