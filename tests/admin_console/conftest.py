"""Operators and viewers signed in to the console, on the real Postgres."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.admin_console.viewers import viewer_group
from tests.factories import UserFactory


@pytest.fixture
def operator(postgres):
    return UserFactory(username="operator", is_staff=True, is_superuser=True)


@pytest.fixture
def console(operator) -> Client:
    """A browserless client signed in as a superuser."""
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_console(postgres) -> Client:
    """Staff in the "viewer" group."""
    user = UserFactory(username="viewer", is_staff=True)
    user.groups.add(viewer_group())
    client = Client()
    client.force_login(user)
    return client
