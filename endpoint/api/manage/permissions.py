"""Who may call the management API: the same Django model permissions the
admin checks, so a staff user can do here exactly what the console lets them
do there.

Staff sign in with the admin's session (CSRF enforced on writes) or send an
admin token (`Authorization: Token <token>`, DRF's authtoken, minted with
`manage.py drf_create_token <username>`). A token only ever stands for a
staff user: an ordinary user's token, like an ordinary API key, opens nothing
here.

Being staff only gets a caller through the door. Each call then needs the
model permission for what it does: ``view_<model>`` to read (GET, HEAD,
OPTIONS; DRF's own DjangoModelPermissions lets any reader through),
``add``/``change``/``delete`` to write. Views with a queryset get theirs from
its model; the others (stats, config, rate limits) name them in
``required_permissions(request)``. Settings holding a secret or an address
the server sends data to need a superuser besides (see ConfigView).
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions

from endpoint.core.config import SUPERUSER_ONLY


class StaffTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, for staff users only."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if not user.is_staff:
            raise exceptions.PermissionDenied("Admin tokens are for staff users only.")
        return user, token


# Token first: its WWW-Authenticate header turns an anonymous call into a 401.
STAFF_AUTHENTICATION = (StaffTokenAuthentication, SessionAuthentication)
USER_AUTHENTICATION = (SessionAuthentication,)


def model_permission(model, action: str) -> str:
    """``"keys.change_apikey"`` for (ApiKey, "change")."""
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def read_or_write(request, read: str, write: str) -> list[str]:
    """The permission a call without a queryset needs: ``read`` for GET,
    HEAD and OPTIONS, ``write`` for anything else."""
    return [read if request.method in SAFE_METHODS else write]


class IsStaff(BasePermission):
    message = "Staff only: sign in to the admin or send an admin token."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_active and user.is_staff)


class HasModelPermissions(DjangoModelPermissions):
    """DjangoModelPermissions that also guards reads; a view may name its
    permissions instead (``required_permissions(request)`` returning a list,
    or None for its queryset model's). The refusal names what is missing, so
    an operator knows which permission to grant."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def needed(self, request, view) -> list[str]:
        named = getattr(view, "required_permissions", None)
        perms = named(request) if named else None
        if perms is None:
            perms = self.get_required_permissions(request.method, self._queryset(view).model)
        return perms

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        missing = [perm for perm in self.needed(request, view) if not user.has_perm(perm)]
        if missing:
            self.message = f"You need the {', '.join(missing)} permission{'s' if len(missing) > 1 else ''}."
            return False
        return True


class IsSignedIn(BasePermission):
    message = "Sign in first."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)


def refuse_superuser_only(user, names) -> None:
    """403 naming the settings in ``names`` that only a superuser may change."""
    if user.is_superuser:
        return
    locked = [name for name in SUPERUSER_ONLY if name in names]
    if locked:
        raise exceptions.PermissionDenied(f"Only a superuser may change {', '.join(locked)}.")
