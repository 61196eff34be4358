"""The people the permission model knows, made the way an operator would
make them: Django users with model permissions, nothing else.

Users get an unusable password: hashing a real one costs more than the rest
of a permission check, and these tests sign in with force_login or a token."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tests.viewers import viewer_group


def make_user(username: str, *, staff: bool = False, superuser: bool = False):
    return get_user_model().objects.create_user(
        username, f"{username}@example.com", password=None, is_staff=staff or superuser, is_superuser=superuser
    )


def grant(user, *perms: str):
    """Give ``user`` the named model permissions ("keys.change_apikey")."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


def full_staff(username: str = "ops"):
    """Staff with every model permission, but not a superuser."""
    user = make_user(username, staff=True)
    user.user_permissions.set(Permission.objects.all())
    return user


def viewer(username: str = "viewer"):
    user = make_user(username, staff=True)
    user.groups.add(viewer_group())
    return user
