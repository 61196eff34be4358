"""Real headless Chromium (Debian's package) driven by Playwright, for the
pages. Playwright's own browser download is not used: `make test` installs
Debian's chromium when it is missing, and a test needing it fails in CI
when it is not there."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if os.path.exists(configured) else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    from tests.conftest import missing_service

    path = chromium_path()
    if path is None:
        missing_service("Chromium (Debian's `chromium` package; `make test` installs it)")
    # Playwright's sync API keeps an event loop running in this thread, which
    # trips Django's async-safety check on every ORM call the test makes. The
    # test's own code is synchronous, so allow it, for this module only.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(chromium):
    """A fresh browser context (no cookies) and page per test; phone width is
    the test's own choice through ``page.set_viewport_size``."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
