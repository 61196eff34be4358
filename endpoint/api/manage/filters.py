"""Query filters for keys and request logs (django-filter). Bad values
(a uid that isn't a number, a time that isn't ISO 8601) answer 400."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, QuerySet
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from endpoint.core.request_ids import log_id
from keys.models import ApiKey
from logs.models import MinerResponse, Request


@extend_schema_field(OpenApiTypes.INT)
class IntegerFilter(django_filters.Filter):
    field_class = forms.IntegerField


class RequestIdField(forms.CharField):
    """An answer's x-request-id (``req_…``) or a bare UUID, as the log's id."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        found = log_id(value)
        if found is None:
            raise forms.ValidationError("Not a request id: give an x-request-id (req_…) or a UUID.")
        return found


@extend_schema_field(OpenApiTypes.STR)
class RequestIdFilter(django_filters.Filter):
    field_class = RequestIdField


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, turned to UTC here: PostgreSQL refuses offsets past
    ±15:59, and a time that has no UTC equivalent (year 1 at +10:00) is a 400."""

    def clean(self, value):
        parsed = super().clean(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("This time is out of range.") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class KeyFilter(django_filters.FilterSet):
    enabled = django_filters.BooleanFilter()
    expired = django_filters.BooleanFilter(method="filter_expired", label="Expired (true) or not (false).")
    unlimited = django_filters.BooleanFilter(field_name="credits", lookup_expr="isnull", label="Unlimited credits.")
    owner = django_filters.CharFilter(field_name="owner__username", label="The owner's username.")

    class Meta:
        model = ApiKey
        fields = ("enabled", "expired", "unlimited", "owner")

    def filter_expired(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        expired = queryset.expired()
        return expired if value else queryset.exclude(pk__in=expired.values("pk"))


class LogFilter(django_filters.FilterSet):
    key = django_filters.CharFilter(method="filter_key", label="The key's id or prefix.")
    responder_hotkey = django_filters.CharFilter(
        method="filter_responder_hotkey", label="Requests a miner with this hotkey answered successfully."
    )
    uid = IntegerFilter(method="filter_uid", label="Requests that queried the miner with this uid.")
    success = django_filters.BooleanFilter(method="filter_success", label="Answered 2xx (true) or not (false).")
    error_code = django_filters.CharFilter(field_name="api_error", label="The error code, e.g. APIKeyNotEnoughCredits.")
    route = django_filters.CharFilter(label="/chat or /v1/chat/completions.")
    status = IntegerFilter(label="The HTTP status answered.")
    start = UtcDateTimeFilter(field_name="started_at", lookup_expr="gte", label="From (inclusive).")
    end = UtcDateTimeFilter(field_name="started_at", lookup_expr="lt", label="Until (exclusive).")
    request_id = RequestIdFilter(field_name="id", label="The answer's x-request-id (req_…), or the log's id.")
    client_request_id = django_filters.CharFilter(
        label="The client's own id for the call (its X-Client-Request-Id or X-Request-Id header)."
    )

    class Meta:
        model = Request
        fields = (
            *("key", "responder_hotkey", "uid", "success", "error_code", "route", "status", "start", "end"),
            *("request_id", "client_request_id"),
        )

    def filter_key(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # The CLI's lookup (id, prefix or full key); several keys may share a short prefix.
        return queryset.filter(key__in=ApiKey.objects.matching(value).values("pk"))

    def filter_responder_hotkey(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # EXISTS, not a join: a request answered twice by the miner still appears once.
        answered = MinerResponse.objects.filter(request=OuterRef("pk"), hotkey=value, is_success=True)
        return queryset.filter(Exists(answered))

    def filter_uid(self, queryset: QuerySet, name: str, value) -> QuerySet:
        queried = MinerResponse.objects.filter(request=OuterRef("pk"), uid=value)
        return queryset.filter(Exists(queried))

    def filter_success(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        ok = {"status__gte": 200, "status__lt": 300}
        return queryset.filter(**ok) if value else queryset.exclude(**ok)
