"""The URLconf of the bench server (tests.bench.settings): the site as
served, plus the bare floor view the gateway is measured against."""

from django.urls import path

from endpoint import urls as site

from . import floor

handler404 = site.handler404

urlpatterns = [
    *site.urlpatterns,
    path("bench/floor/<int:index>", floor.forward, name="bench-floor"),
]
