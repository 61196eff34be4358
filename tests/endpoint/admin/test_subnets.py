"""Subnets in the operator's console (signed in as a superuser unless said
otherwise): listed, added, edited and removed with the checks and words of
`manage.py subnets`."""

from __future__ import annotations

import json

from django.test import Client

from endpoint.core.models import EndpointConfig, Neuron, Subnet
from endpoint.core.subnets import do_add_subnet, find_subnet
from tests.endpoint.roles import full_staff

SUBNETS = "/admin/endpoint/subnet/"
NEW_IMAGES = {
    "slug": "images",
    "name": "Image generation",
    "kind": "image",
    "enabled": "on",
    "network": "finney",
    "netuid": "19",
    "metagraph_source": "chain",
    "metagraph_file": "",
    "miner_path": "/v1/images/generations",
    "price": "5",
    "default_strategy": "",
}


def form_data(console: Client, slug: str) -> dict:
    """What the browser would post back unchanged."""
    row = find_subnet(slug)
    form = console.get(f"{SUBNETS}{row.pk}/change/").context["adminform"].form
    data = {}
    for name in form.fields:
        value = form.initial.get(name)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = "" if value is None else value
    return data


def errors(response) -> dict:
    return {name: list(messages) for name, messages in response.context["adminform"].form.errors.items()}


def test_the_list_shows_the_chat_subnet_and_the_added_ones(console):
    do_add_subnet("images", {"name": "Image generation", "kind": "image", "netuid": "19"})
    page = console.get(SUBNETS).content.decode()
    assert "Chat" in page and "Image generation" in page and "never" in page
    assert console.get(SUBNETS + "add/").status_code == 200


def test_a_superuser_adds_a_subnet(console):
    response = console.post(SUBNETS + "add/", NEW_IMAGES)
    assert response.status_code == 302, errors(response)
    images = find_subnet("images")
    assert (images.kind, images.network, images.netuid, images.miner_path, images.price) == (
        "image", "finney", 19, "/v1/images/generations", 5
    )  # fmt: skip


def test_the_form_refuses_what_the_cli_refuses_in_the_same_words(console):
    do_add_subnet("images", {"name": "Images", "netuid": "19"})
    for changes, field, words in (
        ({"slug": "more-images"}, "netuid", "netuid 19 is already the subnet 'images'"),
        ({"slug": "Bad Slug", "netuid": "20"}, "slug", "expected lowercase letters"),
        ({"slug": "x", "netuid": "20", "miner_path": "images"}, "miner_path", "must start with '/'"),
        ({"slug": "x", "netuid": "20", "metagraph_source": "file"}, "metagraph_file", "needs its metagraph_file"),
    ):
        response = console.post(SUBNETS + "add/", {**NEW_IMAGES, **changes})
        assert response.status_code == 200
        assert words in " ".join(errors(response).get(field, [])), errors(response)
    assert sorted(Subnet.objects.values_list("slug", flat=True)) == ["chat", "images"]


def test_editing_the_chat_subnet_edits_the_config(console):
    data = form_data(console, "chat")
    response = console.post(f"{SUBNETS}{find_subnet('chat').pk}/change/", {**data, "price": "6"})
    assert response.status_code == 302, errors(response)
    assert EndpointConfig.load().cost_per_answer == 6


def test_the_chat_subnet_cannot_be_disabled_or_deleted(console):
    chat = find_subnet("chat")
    data = form_data(console, "chat")
    data.pop("enabled")
    response = console.post(f"{SUBNETS}{chat.pk}/change/", data)
    assert "can't be disabled" in " ".join(errors(response)["enabled"])
    assert console.post(f"{SUBNETS}{chat.pk}/delete/", {"post": "yes"}).status_code == 403
    assert find_subnet("chat").enabled


def test_removing_a_subnet_keeps_its_neurons(console):
    images = do_add_subnet("images", {"name": "Images", "netuid": "19"})
    Neuron.objects.create(netuid=19, uid=0, hotkey="5Img")
    response = console.post(f"{SUBNETS}{images.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Subnet.objects.filter(slug="images").exists()
    assert Neuron.objects.filter(netuid=19).exists()


def test_staff_see_addresses_but_may_not_change_them(postgres):
    staff = Client()
    staff.force_login(full_staff("ops"))
    images = do_add_subnet("images", {"name": "Images", "netuid": "19", "network": "finney"})
    data = form_data(staff, "images")
    response = staff.post(f"{SUBNETS}{images.pk}/change/", {**data, "network": "wss://attacker.example", "price": "3"})
    assert response.status_code == 302, errors(response)
    images.refresh_from_db()
    assert (images.network, images.price) == ("finney", 3)


def test_sync_now_reads_each_selected_subnet(console, tmp_path):
    snapshot = tmp_path / "images.json"
    neurons = [{"uid": 0, "hotkey": "5Img", "axon": "10.0.0.1:9100"}]
    snapshot.write_text(json.dumps({"network": "local", "netuid": 19, "block": 5, "neurons": neurons}))
    images = do_add_subnet("images", {"name": "Images", "netuid": "19", "metagraph_file": str(snapshot)})
    response = console.post(SUBNETS, {"action": "sync_now", "_selected_action": [images.pk]}, follow=True)
    assert "Images: synced from local (netuid 19, block 5): 1 new" in response.content.decode()
    assert Neuron.objects.get(netuid=19, uid=0).hotkey == "5Img"
