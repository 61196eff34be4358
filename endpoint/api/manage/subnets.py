"""/api/admin/subnets/: what `manage.py subnets` does, through the same
functions of endpoint.core.subnets. A subnet is addressed by its slug.

Permissions are the admin's: endpoint.view_subnet to read, add_subnet to
register one, change_subnet to edit, delete_subnet to remove. Naming an
address the server sends data to (network, metagraph source and file,
miner path) needs a superuser besides, as on /api/admin/config/; and since
the chat subnet's settings are the config's, changing them needs
change_endpointconfig too."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from endpoint.core.errors import SubnetInputError, UnknownSubnet
from endpoint.core.models import CHAT_SUBNET, Subnet
from endpoint.core.subnets import (
    CHAT_SETTINGS,
    SUPERUSER_ONLY,
    do_add_subnet,
    do_edit_subnet,
    do_remove_subnet,
    ensure_chat_subnet,
    find_subnet,
)

from .base import StaffView, audit
from .config import as_text
from .serializers import SubnetCreateSerializer, SubnetSerializer, SubnetUpdateSerializer

TAGS = ["admin: subnets"]


def _refuse_addresses(user, body: object) -> None:
    """403 naming the address fields only a superuser may set; checked before
    validation, so a bad value tells a non-superuser nothing more."""
    if user.is_superuser or not isinstance(body, dict):
        return
    locked = [name for name in SUPERUSER_ONLY if name in body]
    if locked:
        raise exceptions.PermissionDenied(f"Only a superuser may set {', '.join(locked)}.")


def _applied(call, *args):
    """The service's answer, its refusals in the management API's field shape."""
    try:
        return call(*args)
    except UnknownSubnet:
        raise
    except SubnetInputError as exc:
        raise ValidationError({exc.param or "non_field_errors": [str(exc)]}) from None


@extend_schema_view(
    list=extend_schema(summary="List subnets", tags=TAGS),
    retrieve=extend_schema(summary="One subnet, by slug", tags=TAGS),
    create=extend_schema(
        summary="Register a subnet", request=SubnetCreateSerializer, responses={201: SubnetSerializer}, tags=TAGS
    ),
    partial_update=extend_schema(
        summary="Change some of a subnet's fields: all or none",
        request=SubnetUpdateSerializer,
        responses={200: SubnetSerializer},
        tags=TAGS,
    ),
    destroy=extend_schema(summary="Remove a subnet (not the chat subnet)", responses={204: None}, tags=TAGS),
)
class SubnetViewSet(
    StaffView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = SubnetSerializer
    pagination_class = None  # a handful of rows
    lookup_field = "slug"
    lookup_value_regex = "[^/]+"
    http_method_names = ("get", "post", "patch", "delete", "head", "options")

    def get_queryset(self):
        ensure_chat_subnet()
        return Subnet.objects.order_by("netuid")

    def required_permissions(self, request) -> list[str] | None:
        if self.action == "partial_update" and self.kwargs.get("slug") == CHAT_SUBNET:
            body = request.data if isinstance(request.data, dict) else {}
            if set(body) & set(CHAT_SETTINGS):
                return ["endpoint.change_subnet", "endpoint.change_endpointconfig"]
        return None  # the method's permission on Subnet

    def get_object(self) -> Subnet:
        row = find_subnet(self.kwargs["slug"])
        self.check_object_permissions(self.request, row)
        return row

    def create(self, request, *args, **kwargs):
        _refuse_addresses(request.user, request.data)
        body = SubnetCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = {name: as_text(value) for name, value in body.validated_data.items() if name != "slug"}
        row = _applied(do_add_subnet, body.validated_data["slug"], fields)
        audit(request, "added subnet", row.slug, netuid=row.netuid, kind=row.kind)
        return Response(SubnetSerializer(row).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        _refuse_addresses(request.user, request.data)
        row = self.get_object()
        body = SubnetUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = {name: as_text(value) for name, value in body.validated_data.items()}
        row = _applied(do_edit_subnet, row.slug, fields)
        audit(request, "edited subnet", row.slug, fields=sorted(fields))
        return Response(SubnetSerializer(row).data)

    def destroy(self, request, *args, **kwargs):
        row = self.get_object()
        _applied(do_remove_subnet, row.slug)
        audit(request, "removed subnet", row.slug)
        return Response(status=status.HTTP_204_NO_CONTENT)
