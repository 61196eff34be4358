"""Typed parsing of request bodies: bad input is one clear 400."""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import serializers

from endpoint import errors
from endpoint.gateway import Prompt
from endpoint.strategies import Strategy


def read_json_object(request) -> dict[str, Any]:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise errors.PayloadTooLarge() from None
    if len(raw) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        raise errors.PayloadTooLarge()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.InvalidBody("Request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise errors.InvalidBody("Request body must be a JSON object.")
    return data


def _first_error(detail: Any, path: str = "") -> str:
    if isinstance(detail, dict):
        name, value = next(iter(detail.items()))
        return _first_error(value, f"{path}.{name}" if path else str(name))
    if isinstance(detail, list) and detail:
        first = next((d for d in detail if d), detail[0])
        index = detail.index(first)
        if isinstance(first, (dict, list)):
            return _first_error(first, f"{path}[{index}]")
        return f"{path}: {first}" if path else str(first)
    return f"{path}: {detail}"


def validated(serializer_class: type[serializers.Serializer], data: dict) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise errors.InvalidBody(_first_error(serializer.errors))
    return serializer.validated_data


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


class ChatRequestSerializer(serializers.Serializer):
    messages = MessageSerializer(many=True, allow_empty=False)
    uids = serializers.ListField(child=serializers.IntegerField(min_value=0), required=False, allow_empty=False)
    top_n = serializers.IntegerField(min_value=1, required=False)
    in_parallel = serializers.IntegerField(min_value=1, required=False)
    respond_on_first_success = serializers.BooleanField(default=True)
    timeout = serializers.FloatField(min_value=0.001, required=False)

    @classmethod
    def prompt(cls, request) -> Prompt:
        data = validated(cls, read_json_object(request))
        if "top_n" in data:  # takes precedence over uids, as in the seed
            strategy = Strategy(top_n=data["top_n"])
        elif "uids" in data:
            strategy = Strategy(uids=tuple(data["uids"]))
        else:
            strategy = None
        return Prompt(
            messages=[dict(m) for m in data["messages"]],
            strategy=strategy,
            timeout=data.get("timeout"),
            in_parallel=data.get("in_parallel"),
            respond_on_first_success=data["respond_on_first_success"],
        )
