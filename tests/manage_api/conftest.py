"""Callers of the management API: staff by admin token or by session, an
ordinary signed-in user, and nobody at all."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.fixture
def staff(db):
    return UserFactory(username="ops", is_staff=True)


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
