"""Who may call the management API.

Staff sign in with the admin's session (CSRF enforced on writes) or send an
admin token (`Authorization: Token <token>`, DRF's authtoken, minted with
`manage.py drf_create_token <username>`). A token only ever stands for a
staff user: an ordinary user's token, like an ordinary API key, opens nothing
here.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import BasePermission


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


class IsStaff(BasePermission):
    message = "Staff only: sign in to the admin or send an admin token."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_active and user.is_staff)


class IsSignedIn(BasePermission):
    message = "Sign in first."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)
