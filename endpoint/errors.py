"""One exception hierarchy for everything a client can be told.

Raised anywhere (services, dispatch, views); turned into a response in one
place (``endpoint.api.errors``), in the seed's ``{"detail", "code"}`` shape on
/chat and OpenAI's ``{"error": {...}}`` shape on /v1.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400
    code = "BadRequest"
    detail = "Bad request."
    openai_type = "invalid_request_error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.detail
        self.extra = extra
        super().__init__(self.detail)

    def headers(self) -> dict[str, str]:
        return {}


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


class RateLimitExceeded(ApiError):
    status, code = 429, "RateLimitExceeded"
    detail = "Rate limit exceeded."
    openai_type = "rate_limit_error"

    def __init__(self, detail: str | None = None, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = max(1, int(retry_after))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


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


class HotkeyNotConfigured(ServiceUnavailable):
    code = "HotkeyNotConfigured"
    detail = "The validator has no hotkey configured, so it cannot sign requests to miners."


class NoMinerServing(ServiceUnavailable):
    code = "NoMinerServing"
    detail = "No miner on the subnet is serving right now."


class ModelNotFound(ApiError):
    status, code = 404, "model_not_found"
    detail = "Unknown model. Use 'auto', 'best', 'best:N', 'top_n:N', 'uids:1,2' or 'uid:N' (see GET /v1/models)."


class FlaggedByModeration(ApiError):
    code = "FlaggedByOpenAIModerationFilter"
    detail = "The prompt was flagged by the moderation filter."


class ModerationUnavailable(ServiceUnavailable):
    code = "ModerationUnavailable"
    detail = "The moderation filter could not check this request; try again shortly."
