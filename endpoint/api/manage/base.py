"""What every management view shares: who may call it, how errors look, and
the audit line each write leaves."""

from __future__ import annotations

import logging

from rest_framework.authtoken.models import Token
from rest_framework.response import Response

from endpoint.api.errors import manage_body

from .permissions import STAFF_AUTHENTICATION, USER_AUTHENTICATION, HasModelPermissions, IsSignedIn, IsStaff

audit_log = logging.getLogger("endpoint.api.manage")


def actor(request) -> str:
    """Who made the call, as the audit log names them."""
    user = request.user
    name = user.get_username() if user else "anonymous"
    return f"{name} (token)" if isinstance(request.auth, Token) else name


def key_label(key) -> str:
    """A key as logs may name it: id and prefix, never the secret."""
    return f"key {key.pk} ({key.prefix}…)"


def audit(request, action: str, target: str = "", **details: object) -> None:
    """One line per write: who did what to which thing."""
    extra = " ".join(f"{name}={value!r}" for name, value in details.items())
    audit_log.info("%s %s %s %s", actor(request), action, target, extra)


class ManageView:
    """Errors in the management API's JSON shape, not the gateway's; OPTIONS
    answers which methods the route takes (204), as on the gateway."""

    error_body = staticmethod(manage_body)

    def options(self, request, *args, **kwargs):
        return Response(status=204, headers={"Allow": ", ".join(self.allowed_methods)})


class StaffView(ManageView):
    """Staff with the model permissions for the call (permissions.py)."""

    authentication_classes = STAFF_AUTHENTICATION
    permission_classes = (IsStaff, HasModelPermissions)


class UserView(ManageView):
    """Any active signed-in user, on their own things only: the view's
    queryset starts from the user, so no model permission is involved."""

    authentication_classes = USER_AUTHENTICATION
    permission_classes = (IsSignedIn,)
