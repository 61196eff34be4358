"""Viewers signed in to the console, on the real Postgres (the superuser's
``console`` is in tests/conftest.py: the keys and logs admin tests use it too)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import UserFactory
from tests.viewers import viewer_group


@pytest.fixture
def viewer_console(postgres) -> Client:
    """Staff in the "viewer" group."""
    user = UserFactory(username="viewer", is_staff=True)
    user.groups.add(viewer_group())
    client = Client()
    client.force_login(user)
    return client
