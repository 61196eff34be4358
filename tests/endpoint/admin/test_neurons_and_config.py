"""Neurons (with their last day's answers) and the config singleton."""

from __future__ import annotations

import asyncio
import json

import pytest

from endpoint.core.config import do_set_config
from endpoint.core.models import EndpointConfig, Neuron
from endpoint.core.redis_clients import close_async_redis
from endpoint.network.minerstats import CallRecord, miner_book
from tests.factories import MinerResponseFactory, RequestLogFactory

NEURONS = "/admin/endpoint/neuron/"
CONFIG = "/admin/endpoint/endpointconfig/"
MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"


def neuron(uid: int, **fields) -> Neuron:
    defaults = {"netuid": 1, "hotkey": f"5Hot{uid:044d}", "axon": f"127.0.0.1:{9100 + uid}", "incentive": 0.1}
    return Neuron.objects.create(uid=uid, **{**defaults, **fields})


def test_neuron_list_shows_success_and_latency_of_the_last_day(console):
    busy, idle = neuron(0), neuron(1)
    request = RequestLogFactory()
    MinerResponseFactory(request=request, uid=0, hotkey=busy.hotkey, is_success=True, response_ms=100)
    MinerResponseFactory(request=request, uid=0, hotkey=busy.hotkey, is_success=False, response_ms=300)

    response = console.get(NEURONS)

    rows = {n.uid: n.stats_24h for n in response.context["cl"].result_list}
    assert rows[0] == {"requests": 2, "cancelled": 0, "success_rate": 0.5, "p50_ms": 200.0}
    assert rows[1] == {}
    assert "50.0%" in response.text
    assert "200 ms" in response.text
    assert idle.hotkey in response.text


@pytest.mark.parametrize("rows", [5, 50])
def test_neuron_list_queries_do_not_grow_with_rows(console, django_assert_max_num_queries, rows):
    request = RequestLogFactory()
    for uid in range(rows):
        MinerResponseFactory(request=request, uid=uid, hotkey=neuron(uid).hotkey)
    with django_assert_max_num_queries(11):
        response = console.get(NEURONS)
    assert len(response.context["cl"].result_list) == rows


def test_description_and_tags_are_editable_and_nothing_else(console):
    n = neuron(4, incentive=0.5)
    response = console.post(
        f"{NEURONS}{n.pk}/change/", {"description": "Fast English", "tags": "fast, english, fast", "incentive": "9"}
    )
    assert response.status_code == 302
    n.refresh_from_db()
    assert (n.description, n.tags, n.incentive) == ("Fast English", ["fast", "english"], 0.5)
    assert console.get(NEURONS + "add/").status_code == 403


def test_sync_metagraph_now_reads_the_configured_source(console, tmp_path):
    snapshot = {
        "network": "local",
        "netuid": 1,
        "block": 77,
        "neurons": [
            {
                "uid": uid,
                "hotkey": f"5Sync{uid:043d}",
                "coldkey": "",
                "axon": f"127.0.0.1:{9200 + uid}",
                "incentive": 0.1,
                "trust": 0,
                "stake": 0,
                "validator_permit": False,
                "active": True,
            }
            for uid in range(3)
        ],
    }
    path = tmp_path / "metagraph.json"
    path.write_text(json.dumps(snapshot))
    for name, value in (
        ("network", "local"),
        ("netuid", "1"),
        ("metagraph_source", "file"),
        ("metagraph_file", str(path)),
    ):
        do_set_config(name, value)

    assert "never been synced" in console.get(NEURONS).text
    response = console.post(NEURONS + "sync/", follow=True)

    assert "Metagraph synced from local (netuid 1, block 77): 3 new" in response.text
    assert Neuron.objects.count() == 3
    assert "block 77" in response.text
    assert console.get(NEURONS + "sync/").status_code == 405


def test_sync_failure_is_reported_not_raised(console, tmp_path):
    do_set_config("metagraph_source", "file")
    do_set_config("metagraph_file", str(tmp_path / "missing.json"))
    response = console.post(NEURONS + "sync/", follow=True)
    assert response.status_code == 200
    assert "Metagraph sync failed" in response.text


# --- config -----------------------------------------------------------------


def config_form_data(console) -> dict:
    """What the browser would post back unchanged."""
    form = console.get(f"{CONFIG}1/change/").context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name)
        if name == "global_rate_limits":
            data["global_rate_limits-rows"] = len(value or [])
            for i, rule in enumerate(value or []):
                data[f"global_rate_limits-{i}-times"] = rule["times"]
                data[f"global_rate_limits-{i}-seconds"] = rule["seconds"]
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None and not hasattr(field.widget, "input_type") or field.widget.input_type != "password":
            data[name] = "" if value is None else value
    return data


def test_config_list_is_the_one_row(console):
    response = console.get(CONFIG)
    assert response.status_code == 302
    assert response["Location"].endswith(f"{CONFIG}1/change/")
    assert console.get(CONFIG + "add/").status_code == 403
    assert console.post(f"{CONFIG}1/delete/", {"post": "yes"}).status_code == 403


def test_secrets_are_masked_write_only_and_kept_when_blank(console):
    do_set_config("openai_api_key", "sk-test-very-secret-openai-key-1234")
    do_set_config("hotkey_mnemonic", MNEMONIC)

    page = console.get(f"{CONFIG}1/change/").text
    assert "sk-test-very-secret" not in page
    assert "legal winner" not in page
    assert "****1234" in page
    assert "(12 words)" in page

    data = config_form_data(console)
    data["miner_timeout"] = "20"
    response = console.post(f"{CONFIG}1/change/", data)
    assert response.status_code == 302
    row = EndpointConfig.load()
    assert row.openai_api_key == "sk-test-very-secret-openai-key-1234"
    assert row.hotkey_mnemonic == MNEMONIC
    assert row.miner_timeout == 20.0

    data["openai_api_key"] = "sk-replaced-5678"
    console.post(f"{CONFIG}1/change/", data)
    assert EndpointConfig.load().openai_api_key == "sk-replaced-5678"


def test_bad_settings_are_refused_like_the_cli(console):
    data = config_form_data(console)
    data.update(
        {
            "default_strategy": "fastest",
            "miner_timeout": "0",
            "hotkey_mnemonic": "not a mnemonic",
            "global_rate_limits-rows": "1",
            "global_rate_limits-0-times": "-3",
            "global_rate_limits-0-seconds": "60",
        }
    )
    response = console.post(f"{CONFIG}1/change/", data)
    assert response.status_code == 200
    text = response.text
    assert "strategy" in text and "above 0" in text
    assert "Rule 1: requests and seconds must both be whole numbers of at least 1." in text
    assert "not a mnemonic" not in text  # a typed secret is not echoed back
    row = EndpointConfig.load()
    assert (row.default_strategy, row.miner_timeout, row.global_rate_limits) == ("", 12.0, [])


def test_a_timeout_above_its_cap_and_an_unknown_network_are_refused_like_the_cli(console):
    data = config_form_data(console)
    data.update({"miner_timeout": "100", "network": "nowhere"})
    response = console.post(f"{CONFIG}1/change/", data)
    assert response.status_code == 200
    assert "expected one of finney, test" in response.text
    assert "can&#x27;t be above max_miner_timeout (60s)" in response.text
    row = EndpointConfig.load()
    assert (row.miner_timeout, row.network) == (12.0, "local")

    data.update({"network": "test"})
    assert console.post(f"{CONFIG}1/change/", data).status_code == 200  # the timeout alone is still refused
    data.update({"max_miner_timeout": "120"})
    assert console.post(f"{CONFIG}1/change/", data).status_code == 302
    row = EndpointConfig.load()
    assert (row.miner_timeout, row.max_miner_timeout, row.network) == (100.0, 120.0, "test")


def test_toggles_and_global_rules_are_written(console):
    data = config_form_data(console)
    data.update(
        {
            "rate_limiting_enabled": "on",
            "moderation_enabled": "on",
            "global_rate_limits-rows": "2",
            "global_rate_limits-0-times": "10",
            "global_rate_limits-0-seconds": "60",
            "global_rate_limits-1-times": "",
            "global_rate_limits-1-seconds": "",
        }
    )
    assert console.post(f"{CONFIG}1/change/", data).status_code == 302
    row = EndpointConfig.load()
    assert row.rate_limiting_enabled and row.moderation_enabled
    assert row.global_rate_limits == [{"times": 10, "seconds": 60}]


def test_every_config_name_is_on_the_page(console):
    from endpoint.core.config import FIELDS

    form = console.get(f"{CONFIG}1/change/").context["adminform"].form
    assert set(FIELDS) <= set(form.fields)


def test_neuron_list_shows_the_live_routing_figures(console):
    watched = neuron(3)

    async def two_calls() -> None:
        CallRecord(watched.hotkey, 5.0).failed("miner answered HTTP 500")
        CallRecord(watched.hotkey, 5.0).succeeded(40.0)
        await miner_book().flush()
        await close_async_redis()

    miner_book().clear()
    asyncio.run(two_calls())
    response = console.get(NEURONS)
    row = next(n for n in response.context["cl"].result_list if n.uid == 3)
    assert row.live["calls"] == 2 and row.live["latency_ms"] == 40.0
    assert "10% ok · 40 ms · 0 in flight" in response.text
