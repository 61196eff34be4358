"""/api/admin/ratelimits/: what `manage.py ratelimit` does, through the same
functions of endpoint.ratelimits. Global rules apply to every key without
rules of its own; ``?key=`` (id or prefix) works on that key's own rules.

Global rules and the on/off switch are part of the runtime config: reading
them needs endpoint.view_endpointconfig, changing them change_endpointconfig.
A key's own rules are part of the key: keys.view_apikey to read them,
keys.change_apikey to add or delete one."""

from __future__ import annotations

import asyncio

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from endpoint.core.errors import RateLimitInputError
from endpoint.core.models import EndpointConfig
from endpoint.ratelimits import close_limiter, limiter_health
from keys.models import ApiKey
from keys.rate_limits import do_add_rate_limit, do_delete_rate_limit, do_set_rate_limiting, list_rate_limits

from .base import StaffView, audit, key_label
from .keys import find_staff_key
from .permissions import read_or_write
from .serializers import (
    RateLimitingSwitchSerializer,
    RateLimitStatusSerializer,
    RuleAddSerializer,
    RuleListSerializer,
)

TAGS = ["admin: rate limits"]
KEY_PARAMETER = OpenApiParameter(
    "key", str, description="A key's id or prefix: its own rules instead of the global ones."
)


def _probe_limiter() -> tuple[bool, str]:
    async def probe() -> tuple[bool, str]:
        try:
            return await limiter_health()
        finally:
            await close_limiter()  # the client belongs to this short-lived loop

    return asyncio.run(probe())


def _key_query(raw: object) -> str | None:
    """The key a call names, or None for the global rules. The permission
    check and the view both read it here, so they never disagree on whose
    rules a call touches."""
    text = "" if raw is None else str(raw).strip()
    return text or None


def _key(raw: object) -> ApiKey | None:
    query = _key_query(raw)
    return find_staff_key(ApiKey.objects.all(), query) if query else None


def _listing(key: ApiKey | None) -> dict:
    listing = list_rate_limits(key)
    return {
        "key": key.pk if key else None,
        "own": listing.own,
        "enabled": EndpointConfig.load().rate_limiting_enabled,
        "rules": listing.rules,
    }


def _whose(key: ApiKey | None) -> str:
    return key_label(key) if key else "global rules"


CONFIG_RULES = ("endpoint.view_endpointconfig", "endpoint.change_endpointconfig")
KEY_RULES = ("keys.view_apikey", "keys.change_apikey")


def _rules_permissions(request, raw_key: object) -> list[str]:
    """Whose rules the call touches decides what it needs."""
    read, write = KEY_RULES if _key_query(raw_key) else CONFIG_RULES
    return read_or_write(request, read, write)


class RateLimitStatusView(StaffView, APIView):
    serializer_class = RateLimitStatusSerializer

    def required_permissions(self, request) -> list[str]:
        return read_or_write(request, *CONFIG_RULES)

    @extend_schema(summary="Whether rate limiting is on, the counter answers, and the global rules", tags=TAGS)
    def get(self, request):
        healthy, detail = _probe_limiter()
        row = EndpointConfig.load()
        return Response(
            {
                "enabled": row.rate_limiting_enabled,
                "limiter_healthy": healthy,
                "limiter": detail,
                "global_rules": row.global_rate_limits,
            }
        )

    @extend_schema(
        summary="Switch rate limiting on or off",
        request=RateLimitingSwitchSerializer,
        responses={200: RateLimitingSwitchSerializer},
        tags=TAGS,
    )
    def patch(self, request):
        body = RateLimitingSwitchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        enabled = body.validated_data["enabled"]
        do_set_rate_limiting(enabled)
        audit(request, "enabled rate limiting" if enabled else "disabled rate limiting")
        return Response({"enabled": enabled})


class RuleListView(StaffView, APIView):
    serializer_class = RuleListSerializer

    def required_permissions(self, request) -> list[str]:
        if request.method in SAFE_METHODS:
            return _rules_permissions(request, request.query_params.get("key"))
        body = request.data if isinstance(request.data, dict) else {}
        return _rules_permissions(request, body.get("key"))

    @extend_schema(summary="The rules in force", parameters=[KEY_PARAMETER], tags=TAGS)
    def get(self, request):
        return Response(_listing(_key(request.query_params.get("key"))))

    @extend_schema(
        summary="Add a rule: at most `times` requests per `seconds`",
        request=RuleAddSerializer,
        responses={201: RuleListSerializer},
        tags=TAGS,
    )
    def post(self, request):
        body = RuleAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = _key(body.validated_data["key"])
        times, seconds = body.validated_data["times"], body.validated_data["seconds"]
        do_add_rate_limit(times, seconds, key=key)
        audit(request, "added rate limit", _whose(key), times=times, seconds=seconds)
        return Response(_listing(key), status=status.HTTP_201_CREATED)


class RuleDetailView(StaffView, APIView):
    serializer_class = RuleListSerializer

    def required_permissions(self, request) -> list[str]:
        return _rules_permissions(request, request.query_params.get("key"))

    @extend_schema(
        summary="Delete the rule at this index (from 0, as listed)",
        parameters=[KEY_PARAMETER],
        responses={200: RuleListSerializer},
        tags=TAGS,
    )
    def delete(self, request, index: int):
        key = _key(request.query_params.get("key"))
        try:
            do_delete_rate_limit(index, key=key)
        except RateLimitInputError as exc:
            raise NotFound(str(exc)) from None
        audit(request, "deleted rate limit", _whose(key), index=index)
        return Response(_listing(key))
