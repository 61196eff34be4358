"""Errors of the management API as JSON a script can act on:
``{"detail": "...", "code": "..."}``, plus ``"errors": {field: [messages]}``
on a 400 for bad input. Service errors (the same ones the CLI prints as
"Error: …") are mapped here, once."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from chat.services import ChatInputError
from endpoint.config import ConfigError
from endpoint.errors import ApiError
from endpoint.ratelimits import RateLimitInputError
from keys.services import CreditsWouldGoNegative, KeyInputError, UnlimitedCredits


class Conflict(exceptions.APIException):
    """The request is well formed but the resource's state forbids it."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the resource's current state."
    default_code = "conflict"


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, CreditsWouldGoNegative):
        return Conflict(str(exc), code="not_enough_credits")
    if isinstance(exc, UnlimitedCredits):
        return Conflict(str(exc), code="unlimited_credits")
    if isinstance(exc, KeyInputError | ConfigError | RateLimitInputError | ChatInputError):
        return exceptions.ValidationError({"non_field_errors": [str(exc)]})
    if isinstance(exc, ObjectDoesNotExist | Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    return exc


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


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, ApiError):
        body = {"detail": exc.detail, "code": exc.code, **exc.extra}
        return Response(body, status=exc.status, headers=exc.headers())
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handling and logging take over
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(response.data)
        response.data = {"detail": _summary(errors), "code": "invalid", "errors": errors}
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        response.data = {"detail": str(detail), "code": code}
    return response
