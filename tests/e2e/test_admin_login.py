"""An operator signs in to the admin in a real browser."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_signs_in_and_sees_the_admin(page, live_server_url):
    get_user_model().objects.create_superuser("operator", "op@example.com", "correct horse battery")
    page.goto(live_server_url + "/admin/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live_server_url + "/admin/")
    assert page.title() == "Operator's console | Validator Endpoint"


def test_wrong_password_is_refused_in_the_page(page, live_server_url):
    get_user_model().objects.create_superuser("operator", "op@example.com", "correct horse battery")
    page.goto(live_server_url + "/admin/login/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errornote")).to_be_visible()  # waits for the answer to the post, however slow
    assert "/admin/login/" in page.url
