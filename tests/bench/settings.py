"""Settings of the bench server (DJANGO_SETTINGS_MODULE=tests.bench.settings):
production's, with the URLconf that adds the floor view (tests/bench/urls.py),
so the view is never part of the site an operator runs."""

from endpoint.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.urls"
