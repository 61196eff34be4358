"""The UID picker searches neurons by uid, the operator's description and
tags, or hotkey, and shows how each has answered lately."""

from __future__ import annotations

import pytest

from endpoint.core.db import run_db
from endpoint.core.models import Neuron

from .events import events

pytestmark = pytest.mark.postgres


@pytest.fixture
def described(network):
    Neuron.objects.filter(uid=5).update(description="Writes and reviews Python code", tags=["code", "python"])
    Neuron.objects.filter(uid=6).update(description="Translates between languages", tags=["translation"])


async def test_search_by_tag_and_description(browser_for, alice, described):
    me = await browser_for(alice)
    by_tag = (await me.client.get("/app/neurons/", params={"q": "translation"})).json()["neurons"]
    assert [n["uid"] for n in by_tag] == [6]
    assert by_tag[0]["description"] == "Translates between languages"
    by_words = (await me.client.get("/app/neurons/", params={"q": "python reviews"})).json()["neurons"]
    assert [(n["uid"], n["tags"]) for n in by_words] == [(5, ["code", "python"])]
    everyone = (await me.client.get("/app/neurons/")).json()["neurons"]
    assert [n["uid"] for n in everyone] == list(range(8))


async def test_search_by_full_or_partial_hotkey(browser_for, alice, described):
    me = await browser_for(alice)
    hotkey = (await run_db(lambda: Neuron.objects.get(uid=5))).hotkey

    async def found(q: str) -> list[int]:
        return [n["uid"] for n in (await me.client.get("/app/neurons/", params={"q": q})).json()["neurons"]]

    assert await found(hotkey) == [5]
    assert await found(hotkey[10:22]) == [5]  # a piece from its middle
    assert await found(hotkey[-8:].lower()) == [5]  # typed in the wrong case
    assert await found(f"python {hotkey[:12]}") == [5]  # with a tag
    assert await found(f"translation {hotkey[:12]}") == []
    assert await found("5Zzzzzzzzzzzz") == []


async def test_recent_success_rate_and_latency_are_shown(browser_for, alice, described, network):
    me = await browser_for(alice)
    events(await me.send("hi", strategy="uids", uids="5"))
    network.set_behaviour(5, mode="error")
    assert (await me.send("hi", strategy="uids", uids="5")).status_code == 502

    (found,) = (await me.client.get("/app/neurons/", params={"q": "code"})).json()["neurons"]
    assert found["requests"] == 2
    assert found["success_rate"] == 0.5
    assert found["p50_ms"] is not None and found["p50_ms"] >= 0


async def test_signed_out_visitors_cannot_list_neurons(api, described):
    assert (await api.get("/app/neurons/")).status_code == 302
