"""/api/admin/keys/: staff manage every API key, as `manage.py key` does.

A key is addressed by its id or its prefix (``vep_AbCd``), the CLI's lookup;
a prefix several keys share answers 409 rather than picking one.

Permissions are the admin's: keys.view_apikey to read, add_apikey to create,
change_apikey to edit or move credits, delete_apikey to delete.
"""

from __future__ import annotations

from django.db import transaction
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.response import Response

from endpoint.core.errors import AmbiguousKey
from keys.credits import do_adjust_credits
from keys.models import ApiKey
from keys.services import do_create_key, do_delete_key, do_edit_key

from .base import StaffView, actor, audit, key_label
from .filters import KeyFilter
from .pagination import KeyPagination
from .permissions import model_permission
from .serializers import (
    CreatedKeySerializer,
    CreditsChangeSerializer,
    KeyCreateSerializer,
    KeySerializer,
    KeyUpdateSerializer,
)


def find_staff_key(queryset, query: str) -> ApiKey:
    """The one key ``query`` (id or prefix) names: 404 for none, 409 for several."""
    if query.startswith("vep_") and len(query) > 20:
        # A full secret in a URL ends up in access logs; refuse to look it up.
        raise ValidationError({"key": ["Address a key by its id or prefix, never by the full key."]})
    matches = list(queryset.matching(query)[:2])
    if not matches:
        raise ApiKey.DoesNotExist()
    if len(matches) > 1:
        raise AmbiguousKey(f"{query!r} matches more than one key; use its id or a longer prefix.")
    return matches[0]


@extend_schema_view(
    list=extend_schema(summary="List API keys", tags=["admin: keys"]),
    create=extend_schema(
        summary="Create a key (the full key is in this response only)",
        request=KeyCreateSerializer,
        responses={201: CreatedKeySerializer},
        tags=["admin: keys"],
    ),
    retrieve=extend_schema(summary="One key, by id or prefix", tags=["admin: keys"]),
    partial_update=extend_schema(
        summary="Edit a key", request=KeyUpdateSerializer, responses={200: KeySerializer}, tags=["admin: keys"]
    ),
    destroy=extend_schema(summary="Delete a key", responses={204: None}, tags=["admin: keys"]),
    credits=extend_schema(
        summary="Add or take credits, atomically",
        request=CreditsChangeSerializer,
        responses={200: KeySerializer},
        tags=["admin: keys"],
    ),
)
class KeyViewSet(
    StaffView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = KeySerializer
    pagination_class = KeyPagination
    filter_backends = (DjangoFilterBackend, SearchFilter, OrderingFilter)
    filterset_class = KeyFilter
    search_fields = ("name", "^prefix")
    ordering_fields = ("id", "name", "created_at", "last_used_at", "credits", "expires_at")
    ordering = ("id",)
    lookup_field = "query"
    lookup_value_regex = "[^/]+"
    http_method_names = ("get", "post", "patch", "delete", "head", "options")

    def get_queryset(self):
        return ApiKey.objects.select_related("owner").order_by("id")

    def required_permissions(self, request) -> list[str] | None:
        if self.action == "credits":
            return [model_permission(ApiKey, "change")]  # a POST, but it changes a key, as the admin's action does
        return None  # the method's permission on ApiKey

    def get_object(self) -> ApiKey:
        key = find_staff_key(self.get_queryset(), self.kwargs["query"])
        self.check_object_permissions(self.request, key)
        return key

    def create(self, request, *args, **kwargs):
        body = KeyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        rate_limits = fields.pop("rate_limits", None)
        with transaction.atomic():
            new = do_create_key(
                name=fields["name"],
                credits=fields["credits"],
                expires_at=fields["valid_until"],
                enabled=fields["enabled"],
                default_strategy=fields["default_strategy"],
                owner=fields["owner"],
            )
            if rate_limits:
                do_edit_key(new.key, rate_limits=rate_limits)
        audit(request, "created", key_label(new.key), name=new.key.name, credits=new.key.credits)
        new.key.raw = new.raw
        return Response(CreatedKeySerializer(new.key).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        key = self.get_object()
        body = KeyUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        edits = body.edits()
        add_credits = body.validated_data.get("add_credits")
        # All or nothing: a refused top-up must not leave the other edits applied.
        with transaction.atomic():
            if edits:
                do_edit_key(key, **edits)
            if add_credits:
                reason = body.validated_data.get("reason", "")
                do_adjust_credits(key, add_credits, reason=reason, actor=actor(request))
        if edits:
            audit(request, "edited", key_label(key), fields=sorted(edits))
        key.refresh_from_db()
        return Response(KeySerializer(key).data)

    def destroy(self, request, *args, **kwargs):
        key = self.get_object()
        label = key_label(key)
        do_delete_key(key)
        audit(request, "deleted", label)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def credits(self, request, *args, **kwargs):
        """Add credits (positive delta) or take them (negative) in one
        conditional UPDATE: concurrent changes sum exactly, and a change that
        would leave the key below zero is refused with 409."""
        key = self.get_object()
        body = CreditsChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        do_adjust_credits(key, body.validated_data["delta"], reason=body.validated_data["reason"], actor=actor(request))
        return Response(KeySerializer(key).data)
