"""/api/admin/config/: the runtime settings `manage.py config` reads and
writes, by the same names, through the same ``do_set_configs``. Secrets can be
written but only ever read back masked.

Reading needs endpoint.view_endpointconfig, changing change_endpointconfig;
settings in endpoint.core.config.SUPERUSER_ONLY (secrets, and addresses the server
sends data to) need a superuser besides: anyone else gets 403 naming them,
and nothing in the request is applied."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from endpoint.core.config import SECRETS, config_values, do_set_configs
from endpoint.core.errors import ConfigError

from .base import StaffView, audit
from .permissions import read_or_write, refuse_superuser_only
from .serializers import ConfigSerializer

TAGS = ["admin: config"]


def as_text(value: Any) -> str:
    """A JSON value as the text `config set` would be given."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


class ConfigView(StaffView, APIView):
    serializer_class = ConfigSerializer

    def required_permissions(self, request) -> list[str]:
        return read_or_write(request, "endpoint.view_endpointconfig", "endpoint.change_endpointconfig")

    @extend_schema(summary="Every runtime setting (secrets masked)", responses={200: ConfigSerializer}, tags=TAGS)
    def get(self, request):
        return Response(config_values())

    @extend_schema(
        summary="Change some settings: all or none",
        request=ConfigSerializer,
        responses={200: ConfigSerializer},
        tags=TAGS,
    )
    def patch(self, request):
        # Refused before validation: a bad value must not tell a non-superuser more.
        if isinstance(request.data, dict):
            refuse_superuser_only(request.user, request.data)
        body = ConfigSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # All or none: a value the service refuses leaves every setting as it was.
        try:
            do_set_configs({name: as_text(value) for name, value in body.validated_data.items()})
        except ConfigError as exc:
            raise ValidationError({exc.param: [str(exc)]}) from None
        changed = sorted(body.validated_data)
        audit(request, "changed config", ", ".join(changed), secrets=[n for n in changed if n in SECRETS])
        return Response(config_values())
