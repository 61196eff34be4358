"""Every enabled subnet's metagraph is synced by `manage.py metagraph sync`
and by beat's tick, each from its own source into its own neurons and status."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from endpoint.core.config import do_set_configs
from endpoint.core.errors import MetagraphSourceError
from endpoint.core.models import EndpointConfig, Neuron, Subnet
from endpoint.core.subnets import do_add_subnet, do_edit_subnet, find_subnet
from endpoint.network.metagraph import directory, forget_directory, subnet_directory
from endpoint.tasks import sync_metagraph_task, sync_metagraph_when_due_task

CHAT_NETUID, IMAGES_NETUID = 3, 19


def snapshot(netuid: int, hotkeys: list[str], *, block: int) -> dict:
    neurons = [
        {"uid": uid, "hotkey": hotkey, "axon": f"10.0.{netuid}.{uid + 1}:9100", "incentive": 0.5}
        for uid, hotkey in enumerate(hotkeys)
    ]
    return {"network": "local", "netuid": netuid, "block": block, "neurons": neurons}


@pytest.fixture(autouse=True)
def _no_cached_directory():
    forget_directory()
    yield
    forget_directory()


@pytest.fixture
def two_subnets(db, tmp_path):
    """The chat subnet on netuid 3 and an image subnet on netuid 19, each from its own snapshot file."""
    chat_file, images_file = tmp_path / "chat.json", tmp_path / "images.json"
    chat_file.write_text(json.dumps(snapshot(CHAT_NETUID, ["5ChatA", "5ChatB"], block=100)))
    images_file.write_text(json.dumps(snapshot(IMAGES_NETUID, ["5ImgA", "5ImgB", "5ImgC"], block=200)))
    do_set_configs(
        {"network": "local", "netuid": str(CHAT_NETUID), "metagraph_source": "file", "metagraph_file": str(chat_file)}
    )
    do_add_subnet(
        "images",
        {"name": "Images", "kind": "image", "netuid": str(IMAGES_NETUID), "network": "local",
         "metagraph_file": str(images_file)},
    )  # fmt: skip
    return chat_file, images_file


def run(*args: str) -> tuple[str, str, int]:
    out, err = StringIO(), StringIO()
    try:
        call_command("metagraph", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    return out.getvalue(), err.getvalue(), code


def hotkeys(netuid: int) -> list[str]:
    return list(Neuron.objects.filter(netuid=netuid, active=True).order_by("uid").values_list("hotkey", flat=True))


def test_metagraph_sync_syncs_every_subnet_from_its_own_file(two_subnets):
    out, err, code = run("sync")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "Synced metagraph: network local, netuid 3, block 100, 2 neurons (2 created, 0 updated, 0 deactivated).",
        "Synced metagraph of images: network local, netuid 19, block 200, 3 neurons "
        "(3 created, 0 updated, 0 deactivated).",
    ]
    assert hotkeys(CHAT_NETUID) == ["5ChatA", "5ChatB"]
    assert hotkeys(IMAGES_NETUID) == ["5ImgA", "5ImgB", "5ImgC"]
    images, chat = find_subnet("images"), find_subnet("chat")
    assert (images.metagraph_block, chat.metagraph_block, EndpointConfig.load().metagraph_block) == (200, 100, 100)
    # Each subnet has its own copy: the chat path never sees the image miners.
    assert [n.hotkey for n in directory().ranked] == ["5ChatA", "5ChatB"]
    assert [n.hotkey for n in subnet_directory(images).ranked] == ["5ImgA", "5ImgB", "5ImgC"]


def test_metagraph_show_names_the_subnet(two_subnets):
    run("sync")
    out, _, _ = run("show", "--subnet", "images")
    assert "netuid 19 on local: block 200" in out and "3 neurons, 3 serving" in out
    assert "5ImgA" in out and "5ChatA" not in out
    chat_out, _, _ = run("show")
    assert "5ChatA" in chat_out and "5ImgA" not in chat_out


def test_metagraph_sync_of_one_subnet(two_subnets):
    out, _, code = run("sync", "--subnet", "images")
    assert code == 0 and out.startswith("Synced metagraph of images: network local, netuid 19, block 200")
    assert hotkeys(CHAT_NETUID) == []


def test_a_disabled_subnet_is_not_synced(two_subnets):
    do_edit_subnet("images", {"enabled": "false"})
    out, _, code = run("sync")
    assert code == 0 and len(out.splitlines()) == 1
    assert hotkeys(IMAGES_NETUID) == []


def test_a_failing_subnet_is_reported_and_the_others_still_synced(two_subnets):
    _, images_file = two_subnets
    images_file.unlink()

    out, err, code = run("sync")

    assert code == 1
    assert out.startswith("Synced metagraph: network local, netuid 3")
    assert err.strip() == f"Error: subnet images: metagraph file {images_file} does not exist"
    assert hotkeys(CHAT_NETUID) == ["5ChatA", "5ChatB"]


def test_a_snapshot_of_another_netuid_says_how_to_fix_the_subnet(two_subnets):
    _, images_file = two_subnets
    images_file.write_text(json.dumps(snapshot(20, ["5Other"], block=1)))
    _, err, code = run("sync", "--subnet", "images")
    assert code == 1
    assert err.strip() == (
        "Error: the metagraph is for netuid 20 but the subnet 'images' is netuid 19 "
        "(manage.py subnets edit images --netuid 20)"
    )


def test_beats_tick_syncs_each_subnet_when_its_own_sync_is_due(two_subnets):
    first = sync_metagraph_when_due_task()
    assert sorted(first) == ["chat", "images"]
    assert (first["images"]["netuid"], first["images"]["created"], first["chat"]["created"]) == (19, 3, 2)

    assert sync_metagraph_when_due_task() is None  # both synced just now

    long_ago = timezone.now() - timedelta(seconds=EndpointConfig.load().metagraph_sync_seconds + 1)
    Subnet.objects.filter(slug="images").update(metagraph_synced_at=long_ago)
    assert list(sync_metagraph_when_due_task()) == ["images"]


def test_the_sync_task_fails_naming_the_subnet_after_syncing_the_others(two_subnets):
    _, images_file = two_subnets
    images_file.unlink()
    failed = "metagraph sync failed for images: metagraph file .* does not exist"
    with pytest.raises(MetagraphSourceError, match=failed):
        sync_metagraph_task()
    assert hotkeys(CHAT_NETUID) == ["5ChatA", "5ChatB"]
