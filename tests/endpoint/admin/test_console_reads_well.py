"""The console's own name, only the apps an operator uses, figures rounded
and times to the second."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.test import Client

from endpoint.core.models import Neuron
from tests.factories import MinerResponseFactory, RequestLogFactory

UNROUNDED = 7.015835999936826


def test_the_console_is_branded(console):
    index = console.get("/admin/").text
    assert '<div id="site-name"><a href="/admin/">Validator Endpoint</a></div>' in index
    assert "<title>Operator&#x27;s console | Validator Endpoint</title>" in index
    assert "Django" not in index
    login = Client().get("/admin/login/").text
    assert "Validator Endpoint" in login and "Django administration" not in login


def test_apps_nobody_uses_in_the_console_are_hidden(console):
    apps = {
        app["app_label"]: {m["object_name"] for m in app["models"]}
        for app in console.get("/admin/").context["app_list"]
    }
    assert apps == {
        "account": {"EmailAddress"},
        "auth": {"Group", "User"},
        "billing": {"CreditPack", "Deposit", "DepositAddress", "Payment", "TaoRate"},
        "endpoint": {"EndpointConfig", "Neuron", "Subnet"},
        "keys": {"ApiKey"},
        "logs": {"Request"},
    }
    for url in ("/admin/socialaccount/socialapp/", "/admin/socialaccount/", "/admin/authtoken/tokenproxy/"):
        assert console.get(url).status_code == 404


def test_neuron_figures_are_rounded(console):
    neuron = Neuron.objects.create(
        netuid=1, uid=7, hotkey="5" + "H" * 47, axon="127.0.0.1:9107", incentive=UNROUNDED, stake=1234.56789
    )
    listing = console.get("/admin/endpoint/neuron/").text
    detail = console.get(f"/admin/endpoint/neuron/{neuron.pk}/change/").text
    for page in (listing, detail):
        assert "7.0158" in page and str(UNROUNDED) not in page
    assert "1,234.57" in detail and "1234.56789" not in detail
    assert f'title="{neuron.hotkey}">5HHHHH…HHHH</code>' in listing  # whole on hover


def test_request_figures_are_rounded_and_times_shown_to_the_second(console, postgres):
    logged = RequestLogFactory(
        elapsed_ms=UNROUNDED * 1000, started_at=datetime(2026, 11, 3, 9, 5, 7, 654321, tzinfo=UTC)
    )
    MinerResponseFactory(request=logged, response_ms=UNROUNDED)
    listing = console.get("/admin/logs/request/").text
    detail = console.get(f"/admin/logs/request/{logged.pk}/change/").text
    for page in (listing, detail):
        assert "2026-11-03 09:05:07" in page
        assert "7,016 ms" in page and "7015.8" not in page
    assert re.search(r'<td class="field-answered_in">\s*<p>7 ms</p>', detail)
    assert str(UNROUNDED) not in detail
