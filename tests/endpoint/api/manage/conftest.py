"""Callers of the management API: staff by admin token or by session, a
superuser, an ordinary signed-in user, and nobody at all."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.endpoint.roles import full_staff, make_user
from tests.factories import UserFactory


@pytest.fixture
def staff(db):
    """An operator: staff with every model permission, not a superuser."""
    return full_staff("ops")


@pytest.fixture
def staff_token(staff) -> str:
    return Token.objects.create(user=staff).key


@pytest.fixture
def admin_api(staff_token) -> APIClient:
    """A script holding an admin token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {staff_token}")
    return client


@pytest.fixture
def superuser_api(db) -> APIClient:
    """A superuser's script: the only caller that may change secrets and addresses."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=make_user('root', superuser=True)).key}")
    return client


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def user_api(user) -> APIClient:
    """Alice, signed in to the site."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()
