"""One exception hierarchy for everything a person can be told.

Raised anywhere (services, dispatch, views, commands); turned into an answer
in one place per face: ``endpoint.api.errors`` for every API (the seed's
``{"detail", "code"}`` on /chat and the management API, OpenAI's
``{"error": {...}}`` on /v1), ``endpoint.middleware`` for the chat page's
JSON, ``endpoint.core.commands`` for operator commands ("Error: …", exit 1).

``InputError`` is bad input from a person (a client, an operator, a chat
user): nothing was changed and the message says what to fix. Anything that
is not an ``ApiError`` is a bug and is handled as one (a logged 500, a
traceback).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import JsonResponse


class ApiError(Exception):
    status = 400
    code = "BadRequest"
    detail = "Bad request."
    openai_type = "invalid_request_error"
    param: str | None = None  # the request field at fault, when one is (OpenAI's ``param``)

    def __init__(self, detail: str | None = None, *, param: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.detail
        self.extra = extra
        if param is not None:
            self.param = param
        super().__init__(self.detail)

    def headers(self) -> dict[str, str]:
        return {}


class InputError(ApiError, ValueError):
    """Bad input from a person. Also a ValueError, so parsers that validate
    with ValueError treat it as one."""

    code = "invalid"
    detail = "Invalid input."


class KeyInputError(InputError):
    """Bad input about API keys."""


class UnlimitedCredits(KeyInputError):
    """Credits were to be added to or taken from a key that has no limit."""

    status, code = 409, "unlimited_credits"


class CreditsWouldGoNegative(KeyInputError):
    """Taking the credits would leave the key below zero."""

    status, code = 409, "not_enough_credits"


class ConfigError(InputError):
    """A setting's new value is not one it can take."""


class SubnetInputError(InputError):
    """A subnet's fields are not ones it can take, or the edit breaks a rule between subnets."""


class UnknownSubnet(SubnetInputError):
    status, code = 404, "not_found"


class RateLimitInputError(InputError):
    """Bad input about rate-limit rules."""


class ChatInputError(InputError):
    """Bad input on the chat pages (a message, a title, a key's name)."""

    code = "BadRequest"


class MetagraphSourceError(InputError):
    """The metagraph source could not be read or holds something unusable."""


class OperatorError(InputError):
    """Bad input to an operator command (its arguments)."""


class BillingInputError(InputError):
    """Bad input about buying credits (a pack, a card) or the packs on sale."""

    code = "BadRequest"


class CardDeclined(ApiError):
    """The card issuer or Stripe refused the payment: nothing was charged."""

    status, code = 402, "card_declined"
    detail = "Your card was declined."


class InvalidBody(ApiError):
    code = "InvalidRequestBody"


class UnsupportedEndpointVersion(ApiError):
    code = "UnsupportedEndpointVersion"


class UnknownUid(ApiError):
    code = "UnknownUid"


class PayloadTooLarge(ApiError):
    status, code = 413, "PayloadTooLarge"
    detail = "Request body is larger than the configured limit."


class Unauthorized(ApiError):
    status = 401
    openai_type = "authentication_error"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class APIKeyMissing(Unauthorized):
    code = "APIKeyMissing"
    detail = "No API key was given. Send it as 'Authorization: Bearer <key>'."


class APIKeyInvalid(Unauthorized):
    code = "APIKeyInvalid"
    detail = "The API key is not valid."


class APIKeyDisabled(Unauthorized):
    code = "APIKeyDisabled"
    detail = "The API key is disabled."


class APIKeyExpired(Unauthorized):
    code = "APIKeyExpired"
    detail = "The API key has expired."


class APIKeyNotEnoughCredits(ApiError):
    status, code = 402, "APIKeyNotEnoughCredits"
    detail = "The API key does not have enough credits for this request."
    openai_type = "insufficient_quota"


class Conflict(ApiError):
    """Well formed, but the thing's state forbids it."""

    status, code = 409, "conflict"
    detail = "The request conflicts with the resource's current state."


class AmbiguousKey(Conflict):
    code = "ambiguous_key"


class RateLimitExceeded(ApiError):
    status, code = 429, "RateLimitExceeded"
    detail = "Rate limit exceeded."
    openai_type = "rate_limit_error"

    def __init__(self, detail: str | None = None, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RateLimitHit(RateLimitExceeded):
    """A 429 that also carries the x-ratelimit headers of the refusal
    (``state``: the tightest rule, as ``endpoint.ratelimits.RateState``)."""

    def __init__(self, state: Any, rule: tuple[int, int], retry_after: int) -> None:
        times, seconds = rule
        detail = (
            f"Rate limit exceeded: at most {times} requests per {seconds} seconds. "
            f"Try again in {max(1, retry_after)} seconds."
        )
        super().__init__(detail, retry_after=retry_after)
        self.state = state

    def headers(self) -> dict[str, str]:
        return {**super().headers(), **self.state.headers()}


class AllMinersFailed(ApiError):
    status, code = 502, "AllMinersFailed"
    detail = "All miner responses have failed."
    openai_type = "api_error"


class ServiceUnavailable(ApiError):
    status = 503
    openai_type = "api_error"


class MetagraphNotSynced(ServiceUnavailable):
    code = "MetagraphNotSynced"
    detail = "The metagraph has not been synced yet; try again shortly."


class DatabaseUnavailable(ServiceUnavailable):
    code = "DatabaseUnavailable"
    detail = "The database is unavailable; try again shortly."


def from_database(exc: BaseException) -> ApiError | None:
    """A 503 for a database that could not be reached or dropped the
    connection (nothing was done; the client may retry), else None."""
    from django.db import InterfaceError, OperationalError

    return DatabaseUnavailable() if isinstance(exc, OperationalError | InterfaceError) else None


class RateLimiterUnavailable(ServiceUnavailable):
    code = "RateLimiterUnavailable"
    detail = "The rate limiter is unavailable; try again shortly."


class HotkeyNotConfigured(ServiceUnavailable):
    code = "HotkeyNotConfigured"
    detail = "The validator has no hotkey configured, so it cannot sign requests to miners."


class NoMinerServing(ServiceUnavailable):
    code = "NoMinerServing"
    detail = "No miner on the subnet is serving right now."


class PaymentsNotConfigured(ServiceUnavailable):
    code = "PaymentsNotConfigured"
    detail = "Card payments are not set up on this endpoint yet."


class PaymentProviderUnavailable(ServiceUnavailable):
    code = "PaymentProviderUnavailable"
    detail = "The card payment service could not be reached; nothing was charged. Try again shortly."


class WebhookSignatureInvalid(ApiError):
    code = "invalid_signature"
    detail = "The Stripe-Signature header does not match this payload and the webhook secret."


class ModelNotFound(ApiError):
    status, code = 404, "model_not_found"
    param = "model"
    detail = "Unknown model. Use 'auto', 'best', 'best:N', 'top_n:N', 'uids:1,2' or 'uid:N' (see GET /v1/models)."


class MediaNotFound(ApiError):
    status, code = 404, "not_found"
    detail = "This media file does not exist or has expired."


class FlaggedByModeration(ApiError):
    code = "FlaggedByOpenAIModerationFilter"
    detail = "The prompt was flagged by the moderation filter."


class ModerationUnavailable(ServiceUnavailable):
    code = "ModerationUnavailable"
    detail = "The moderation filter could not check this request; try again shortly."


# --- the shapes an error is told in ---------------------------------------------


def seed_body(error: ApiError) -> dict:
    """/chat and the management API: the original seed's shape."""
    return {"detail": error.detail, "code": error.code, **error.extra}


def is_openai_path(path: str) -> bool:
    """/v1 and everything under it answers errors in OpenAI's shape."""
    return path == "/v1" or path.startswith("/v1/")


def openai_body(error: ApiError) -> dict:
    """/v1: OpenAI's shape (``param`` always there, null when no one field is at fault)."""
    body = {"message": error.detail, "type": error.openai_type, "param": error.param, "code": error.code}
    return {"error": {**body, **error.extra}}


def page_body(error: ApiError) -> dict:
    """The chat page's JSON calls: what its script shows, and when to retry."""
    body: dict = {"error": error.detail, "code": error.code}
    if isinstance(error, RateLimitExceeded):
        body["retry_after"] = error.retry_after
    return body


log = logging.getLogger("endpoint.errors")


def log_answered(request: Any, error: ApiError, response: Any) -> Any:
    """The one line an error answered to a person is logged as: status, code,
    route and message, at WARNING (4xx) or ERROR (5xx), never a traceback
    (the error is expected; the message says what happened). Django's own
    "Bad Request: /chat" line for the same response is then skipped."""
    level = logging.ERROR if error.status >= 500 else logging.WARNING
    log.log(level, "%s %s %s %s: %s", error.status, error.code, request.method, request.path, error.detail)
    response._has_been_logged = True  # read by django.utils.log.log_response
    return response


def json_response(error: ApiError, shape=seed_body, request: Any = None) -> JsonResponse:
    """``error`` as JSON; logged once when ``request`` is given (without it,
    Django logs the response itself, e.g. a bug's 500 with its traceback)."""
    response = JsonResponse(shape(error), status=error.status)
    for name, value in error.headers().items():
        response[name] = value
    return log_answered(request, error, response) if request is not None else response


def answers_errors_as_json(shape):
    """For a page's async JSON view: an ApiError it raises (or a database
    that is unreachable) becomes its answer, in ``shape``. The API's views
    get the same from DRF's handler (``endpoint.api.errors``)."""

    def decorate(view):
        if not iscoroutinefunction(view):
            raise TypeError(f"{view.__name__} must be an async view")

        @functools.wraps(view)
        async def answer(request, *args, **kwargs):
            try:
                return await view(request, *args, **kwargs)
            except Exception as exc:
                error = exc if isinstance(exc, ApiError) else from_database(exc)
                if error is None:
                    raise
                return json_response(error, shape, request)

        return answer

    return decorate


# --- inside the gateway ---------------------------------------------------------


class StreamCut(Exception):
    """A binary answer (audio) broke off after its first bytes went out: the
    client's connection is cut, so a partial body can't pass for a whole one
    (endpoint.asgi logs it in one line; the call's log says what the miner did)."""


class MinerFailure(Exception):
    """A miner call went wrong; the message is what the client is shown, in
    that miner's entry of the answer (never a response of its own)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
