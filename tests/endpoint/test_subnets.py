"""Subnets as configuration: the single-subnet config became the chat subnet,
and operators register more with the same checks from every face."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from endpoint.core.config import do_set_config, forget_runtime_config, runtime_config
from endpoint.core.errors import ConfigError, SubnetInputError, UnknownSubnet
from endpoint.core.models import EndpointConfig, Subnet
from endpoint.core.subnets import do_add_subnet, do_edit_subnet, do_remove_subnet, find_subnet, list_subnets


def migrate_endpoint(target: str) -> None:
    MigrationExecutor(connection).migrate([("endpoint", target)])


def historical_model(target: str, name: str):
    """The model as it stood at migration ``target``: later columns don't exist yet."""
    state = MigrationExecutor(connection).loader.project_state(("endpoint", target))
    return state.apps.get_model("endpoint", name)


def latest_endpoint_migration() -> str:
    (leaf,) = [name for app, name in MigrationExecutor(connection).loader.graph.leaf_nodes() if app == "endpoint"]
    return leaf


def test_the_migration_turns_the_existing_config_into_the_chat_subnet(postgres):
    latest = latest_endpoint_migration()
    synced = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    try:
        migrate_endpoint("0003_stripe_config")
        # bulk_create: no save signal, as on an install from before subnets existed
        OldConfig = historical_model("0003_stripe_config", "EndpointConfig")
        OldConfig.objects.bulk_create(
            [
                OldConfig(
                    pk=1,
                    network="finney",
                    netuid=7,
                    metagraph_source="chain",
                    miner_path="/v2/chat",
                    cost_per_answer=3,
                    default_strategy="top_n:2",
                    metagraph_synced_at=synced,
                    metagraph_block=4242,
                    metagraph_network="finney",
                )
            ]
        )
        migrate_endpoint(latest)
        chat = Subnet.objects.get()
    finally:
        migrate_endpoint(latest)
    assert (chat.slug, chat.name, chat.kind, chat.enabled) == ("chat", "Chat", "chat", True)
    assert (chat.network, chat.netuid, chat.metagraph_source, chat.miner_path) == ("finney", 7, "chain", "/v2/chat")
    assert (chat.price, chat.default_strategy) == (3, "top_n:2")
    assert (chat.metagraph_synced_at, chat.metagraph_block, chat.metagraph_network) == (synced, 4242, "finney")


def test_a_fresh_install_has_the_chat_subnet_from_its_config(db):
    [chat] = list_subnets()
    config = EndpointConfig.load()
    assert (chat.slug, chat.netuid, chat.network, chat.price) == ("chat", config.netuid, config.network, 1)


def test_config_set_and_subnets_edit_chat_are_one_setting(db):
    do_set_config("netuid", "9")
    do_set_config("cost_per_answer", "4")
    chat = find_subnet("chat")
    assert (chat.netuid, chat.price) == (9, 4)

    do_edit_subnet("chat", {"price": "2", "default_strategy": "top_n:3", "name": "Text chat"})
    forget_runtime_config()
    gateway_sees = runtime_config()
    assert (gateway_sees.cost_per_answer, gateway_sees.default_strategy) == (2, "top_n:3")
    assert find_subnet("chat").name == "Text chat"


def test_a_subnet_is_added_listed_edited_and_removed(db):
    images = do_add_subnet(
        "images",
        {"name": "Images", "kind": "image", "netuid": "19", "network": "finney", "price": "5"},
    )
    # No miner path given: the route OpenAI has for its kind.
    assert (images.metagraph_source, images.enabled, images.miner_path) == ("chain", True, "/v1/images/generations")
    assert [s.slug for s in list_subnets()] == ["chat", "images"]

    edited = do_edit_subnet("images", {"miner_path": "/v2/draw", "enabled": "false"})
    assert (edited.miner_path, edited.enabled, edited.price) == ("/v2/draw", False, 5)

    do_remove_subnet("images")
    assert [s.slug for s in list_subnets()] == ["chat"]


def test_a_netuid_belongs_to_one_subnet(db):
    do_add_subnet("images", {"name": "Images", "netuid": "19"})
    with pytest.raises(SubnetInputError, match="netuid 19 is already the subnet 'images'") as refused:
        do_add_subnet("images-2", {"name": "More images", "netuid": "19"})
    assert refused.value.param == "netuid"
    with pytest.raises(ConfigError, match="netuid 19 is already the subnet 'images'"):
        do_set_config("netuid", "19")
    assert find_subnet("chat").netuid == EndpointConfig.load().netuid != 19


@pytest.mark.parametrize(
    ("slug", "fields", "param", "message"),
    [
        ("Bad Slug", {"name": "x", "netuid": "20"}, "slug", "lowercase letters"),
        ("speech", {"netuid": "20"}, "name", "needs its name"),
        ("speech", {"name": "Speech", "netuid": "70000"}, "netuid", "≤ 65535"),
        ("speech", {"name": "Speech", "netuid": "20", "kind": "video"}, "kind", "expected one of chat, image"),
        ("speech", {"name": "Speech", "netuid": "20", "network": "mars"}, "network", "expected one of finney"),
        ("speech", {"name": "Speech", "netuid": "20", "miner_path": "tts"}, "miner_path", "must start with '/'"),
        ("speech", {"name": "Speech", "netuid": "20", "price": "-1"}, "price", "≥ 0"),
        ("speech", {"name": "Speech", "netuid": "20", "default_strategy": "fastest"}, "default_strategy", "'fastest'"),
        ("speech", {"name": "Speech", "netuid": "20", "metagraph_source": "file"}, "metagraph_file", "needs its"),
        ("speech", {"name": "Speech", "netuid": "20", "colour": "red"}, "colour", "unknown subnet field"),
        ("chat", {"name": "Chat again", "netuid": "20"}, "slug", "already exists"),
    ],
)
def test_bad_subnets_are_refused_naming_the_field(db, slug, fields, param, message):
    with pytest.raises(SubnetInputError, match=message) as refused:
        do_add_subnet(slug, fields)
    assert refused.value.param == param
    assert [s.slug for s in list_subnets()] == ["chat"]


def test_the_chat_subnet_stays_enabled_chat_and_present(db):
    for fields, message in (({"enabled": "false"}, "can't be disabled"), ({"kind": "image"}, "kind stays chat")):
        with pytest.raises(SubnetInputError, match=message):
            do_edit_subnet("chat", fields)
    with pytest.raises(SubnetInputError, match="can't be removed"):
        do_remove_subnet("chat")
    with pytest.raises(UnknownSubnet, match="no subnet 'nope'; known: chat"):
        do_edit_subnet("nope", {"price": "1"})
