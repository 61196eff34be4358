"""A miner call cancelled because another miner answered first is neither a
success nor a failure: every figure leaves it out of the success rate and
shows it on its own."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from chat.neurons import search_neurons
from endpoint.core.models import EndpointConfig, Neuron
from endpoint.gateway import _miner_logs
from endpoint.metrics import MINER_RESPONSES, observe_call
from endpoint.network.metagraph import NeuronInfo
from endpoint.network.protocol import MinerResult
from logs.models import CANCELLED, MinerResponse
from logs.services import RequestLog, record_request
from logs.stats import dashboard_stats, miner_stats
from tests.factories import MinerResponseFactory, RequestLogFactory, UserFactory

HOTKEY = "5" + "S" * 47  # uid 7: answered once, cancelled eight times
FAILING = "5" + "F" * 47  # uid 8: failed once, cancelled once


@pytest.fixture
def uid7(postgres):
    """uid 7 answered the one prompt it finished; eight more were cancelled
    because another miner answered first. uid 8 failed once, cancelled once."""
    Neuron.objects.create(netuid=EndpointConfig.load().netuid, uid=7, hotkey=HOTKEY, axon="127.0.0.1:9107")
    Neuron.objects.create(netuid=EndpointConfig.load().netuid, uid=8, hotkey=FAILING, axon="127.0.0.1:9108")
    started = timezone.now() - timedelta(minutes=5)
    answered = RequestLogFactory(started_at=started)
    MinerResponseFactory(request=answered, uid=7, hotkey=HOTKEY, is_success=True, response_ms=120)
    for _ in range(8):
        lost = RequestLogFactory(started_at=started)
        MinerResponseFactory(
            request=lost, uid=7, hotkey=HOTKEY, is_success=False, response="", error=CANCELLED, status=None
        )
    failed = RequestLogFactory(started_at=started, status=502)
    MinerResponseFactory(request=failed, uid=8, hotkey=FAILING, is_success=False, error="timed out", response_ms=900)
    MinerResponseFactory(request=failed, uid=8, hotkey=FAILING, is_success=False, error=CANCELLED, response_ms=0)
    return answered


def test_figures_leave_cancelled_calls_out_of_the_rate(uid7):
    figures = miner_stats(timezone.now() - timedelta(hours=24))
    assert figures[HOTKEY] == {"requests": 9, "cancelled": 8, "success_rate": 1.0, "p50_ms": 120.0}
    # A failure is still a failure; the cancelled call's 0 ms is no answer time.
    assert figures[FAILING] == {"requests": 2, "cancelled": 1, "success_rate": 0.0, "p50_ms": 900.0}
    top = {m["uid"]: m for m in dashboard_stats("1h")["top_miners"]}
    assert (top[7]["success_rate"], top[7]["requests"], top[7]["cancelled"]) == (1.0, 9, 8)


def test_a_miner_only_ever_cancelled_has_no_rate(postgres):
    request = RequestLogFactory()
    MinerResponseFactory(request=request, uid=9, hotkey="5Never", is_success=False, error=CANCELLED)
    assert miner_stats(timezone.now() - timedelta(hours=1))["5Never"]["success_rate"] is None


def test_dashboard_shows_100_percent_and_the_cancelled_calls(console, uid7):
    page = console.get("/admin/").text
    table = re.search(r'<table id="top-miners">.*?</table>', page, re.S).group(0)
    assert "<th" in table and ">Cancelled</th>" in table
    row = next(r for r in re.findall(r"<tr>.*?</tr>", table, re.S) if HOTKEY in r)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[0] == "7"
    assert cells[2:5] == ["9", "8", "100.0%"]


def test_neuron_list_shows_100_percent_and_the_cancelled_calls(console, uid7):
    response = console.get("/admin/endpoint/neuron/")
    assert response.status_code == 200
    shown = {n.uid: n.stats_24h for n in response.context["cl"].result_list}
    assert shown[7]["success_rate"] == 1.0
    row = next(r for r in re.findall(r"<tr.*?</tr>", response.text, re.S) if HOTKEY in r)
    assert '<td class="field-success_24h">100.0%</td>' in row
    assert '<td class="field-calls_24h">9</td>' in row
    assert '<td class="field-cancelled_24h">8</td>' in row


def test_request_detail_shows_a_cancelled_call_as_cancelled(console, uid7):
    lost = MinerResponse.objects.filter(hotkey=HOTKEY, error=CANCELLED).first().request
    failed = MinerResponse.objects.get(hotkey=FAILING, error="timed out").request

    lost_page = console.get(f"/admin/logs/request/{lost.pk}/change/").text
    failed_page = console.get(f"/admin/logs/request/{failed.pk}/change/").text

    result = re.compile(r'<td class="field-result">\s*<p>(\w+)</p>', re.S)
    assert result.findall(lost_page) == ["cancelled"]
    assert sorted(result.findall(failed_page)) == ["cancelled", "failed"]
    assert result.findall(console.get(f"/admin/logs/request/{uid7.pk}/change/").text) == ["ok"]


def test_chat_search_shows_100_percent(uid7):
    (found,) = search_neurons("uid 7")
    assert (found["uid"], found["success_rate"], found["requests"], found["cancelled"]) == (7, 1.0, 9, 8)

    client = Client()
    client.force_login(UserFactory(username="alice"))
    (shown,) = client.get("/app/neurons/", {"q": "uid 7"}).json()["neurons"]
    assert (shown["success_rate"], shown["cancelled"]) == (1.0, 8)


@pytest.fixture
def admin_api(operator) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
    return client


def test_rest_stats_and_log_detail(admin_api, uid7):
    body = admin_api.get("/api/admin/stats/", {"window": "1h"}).json()
    (seven,) = [m for m in body["top_miners"] if m["uid"] == 7]
    assert (seven["requests"], seven["cancelled"], seven["success_rate"]) == (9, 8, 1.0)

    failed = MinerResponse.objects.get(hotkey=FAILING, error="timed out").request
    detail = admin_api.get(f"/api/admin/logs/{failed.pk}/").json()
    assert sorted(m["outcome"] for m in detail["miner_responses"]) == ["cancelled", "failed"]


def test_what_the_gateway_logs_counts_as_cancelled(postgres):
    """The gateway's rows for a race lost, written and read back: 100%."""
    winner = MinerResult(uid=7, hotkey=HOTKEY, ok=True, content="hi", status=200, response_ms=80.0)
    miners = _miner_logs([winner], [NeuronInfo(uid=7, hotkey=HOTKEY), NeuronInfo(uid=7, hotkey=HOTKEY)])
    before = MINER_RESPONSES.labels("7", "cancelled")._value.get()
    entry = RequestLog(route="/chat", started_at=timezone.now(), miners=miners)
    observe_call(entry)
    record_request(entry)

    assert MINER_RESPONSES.labels("7", "cancelled")._value.get() - before == 2
    assert {r.outcome for r in MinerResponse.objects.filter(request_id=entry.id)} == {"ok", "cancelled"}
    figures = miner_stats(timezone.now() - timedelta(hours=1))[HOTKEY]
    assert (figures["success_rate"], figures["cancelled"]) == (1.0, 2)


def test_a_record_kept_without_its_texts_stays_cancelled():
    entry = RequestLog(route="/chat", started_at=timezone.now(), miners=_miner_logs([], [NeuronInfo(7, HOTKEY)]))
    assert [m.error for m in entry.without_texts().miners] == [CANCELLED]
