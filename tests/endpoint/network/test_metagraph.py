"""The metagraph: from its source (a JSON snapshot, or the chain through the
bittensor SDK) into Neuron rows, and into the Directory the hot path reads."""

from __future__ import annotations

import asyncio
import json
from io import StringIO

import pytest
from django.core.management import call_command

from endpoint.core.models import EndpointConfig, Neuron
from endpoint.network.metagraph import (
    NeuronInfo,
    adirectory,
    directory,
    fetch_chain_snapshot,
    forget_directory,
    load_snapshot,
    sync_metagraph,
)
from tests.endpoint.network.chain_fixture import FakeSubstrate, metagraph_record

NETUID = 3


def neuron(uid: int, **fields) -> dict:
    return {
        "uid": uid,
        "hotkey": f"5Hotkey{uid:02d}",
        "coldkey": f"5Coldkey{uid:02d}",
        "axon": f"10.0.0.{uid + 1}:9100",
        "incentive": 0.1,
        "trust": 0.5,
        "stake": 100.0,
        "validator_permit": False,
        "active": True,
        **fields,
    }


def snapshot(neurons: list[dict], *, block: int = 1234, network: str = "local", netuid: int = NETUID) -> dict:
    return {"network": network, "netuid": netuid, "block": block, "neurons": neurons}


@pytest.fixture(autouse=True)
def _no_cached_directory():
    forget_directory()
    yield
    forget_directory()


@pytest.fixture
def snapshot_file(tmp_path):
    return tmp_path / "metagraph.json"


@pytest.fixture
def config(db, snapshot_file) -> EndpointConfig:
    row = EndpointConfig.load()
    row.network, row.netuid = "local", NETUID
    row.metagraph_source, row.metagraph_file = "file", str(snapshot_file)
    row.save()
    return row


def write(path, data) -> None:
    path.write_text(json.dumps(data))


def rows() -> dict[int, Neuron]:
    return {n.uid: n for n in Neuron.objects.filter(netuid=NETUID)}


# --- Sync from a snapshot file -------------------------------------------------


def test_sync_from_the_configured_file_creates_neurons(config, snapshot_file):
    write(snapshot_file, snapshot([neuron(0), neuron(1, axon="", validator_permit=True)], block=77))

    result = sync_metagraph()

    assert (result.created, result.updated, result.deactivated) == (2, 0, 0)
    assert (result.network, result.netuid, result.block) == ("local", NETUID, 77)
    stored = rows()
    assert stored[0].hotkey == "5Hotkey00" and stored[0].axon == "10.0.0.1:9100" and stored[0].stake == 100.0
    assert stored[1].axon == "" and stored[1].validator_permit and not stored[1].serving
    config.refresh_from_db()
    assert config.metagraph_block == 77 and config.metagraph_network == "local"
    assert config.metagraph_synced_at is not None


def test_resync_updates_scores_and_keeps_the_operators_notes(config, snapshot_file):
    write(snapshot_file, snapshot([neuron(0, incentive=0.1)]))
    sync_metagraph()
    Neuron.objects.filter(netuid=NETUID, uid=0).update(description="fast GPU miner", tags=["gpu"])

    write(snapshot_file, snapshot([neuron(0, incentive=0.7, trust=0.9)], block=1300))
    result = sync_metagraph()

    assert (result.created, result.updated, result.deactivated) == (0, 1, 0)
    row = rows()[0]
    assert (row.incentive, row.trust) == (0.7, 0.9)
    assert (row.description, row.tags) == ("fast GPU miner", ["gpu"])


def test_a_new_hotkey_on_a_uid_clears_the_notes_about_the_old_miner(config, snapshot_file):
    write(snapshot_file, snapshot([neuron(0), neuron(1)]))
    sync_metagraph()
    Neuron.objects.filter(netuid=NETUID).update(description="known miner", tags=["ok"])

    write(snapshot_file, snapshot([neuron(0, hotkey="5SomeoneElse"), neuron(1)]))
    sync_metagraph()

    stored = rows()
    assert (stored[0].hotkey, stored[0].description, stored[0].tags) == ("5SomeoneElse", "", [])
    assert (stored[1].description, stored[1].tags) == ("known miner", ["ok"])


def test_uids_missing_from_the_snapshot_are_deactivated(config, snapshot_file):
    write(snapshot_file, snapshot([neuron(0), neuron(1), neuron(2)]))
    sync_metagraph()

    write(snapshot_file, snapshot([neuron(0), neuron(2)]))
    result = sync_metagraph()
    assert (result.created, result.updated, result.deactivated) == (0, 2, 1)
    assert [uid for uid, row in rows().items() if not row.active] == [1]
    assert directory().get(1).active is False
    assert [n.uid for n in directory().ranked] == [0, 2]

    assert sync_metagraph().deactivated == 0  # already inactive: nothing new to report


def test_other_netuids_are_left_alone(config, snapshot_file):
    Neuron.objects.create(netuid=NETUID + 1, uid=0, hotkey="5Elsewhere", active=True)
    write(snapshot_file, snapshot([neuron(5)]))
    sync_metagraph()
    assert Neuron.objects.get(netuid=NETUID + 1, uid=0).active


def test_sync_with_many_neurons_uses_a_fixed_number_of_queries(config, django_assert_max_num_queries):
    sync_metagraph(snapshot=snapshot([neuron(uid) for uid in range(200)]))
    changed = [neuron(uid, incentive=uid / 1000) for uid in range(150)] + [neuron(uid) for uid in range(300, 350)]
    with django_assert_max_num_queries(12):
        result = sync_metagraph(snapshot=snapshot(changed))
    assert (result.created, result.updated, result.deactivated) == (50, 150, 50)


# --- Invalid snapshots ------------------------------------------------------------


INVALID = [
    pytest.param("{not json", "is not valid JSON", id="bad-json"),
    pytest.param([1, 2], "expected a JSON object", id="not-an-object"),
    pytest.param({"network": "local", "netuid": NETUID, "neurons": []}, "missing field(s): block", id="no-block"),
    pytest.param(snapshot([neuron(0), {"uid": 1}]), "neurons[1] is missing field(s): hotkey", id="no-hotkey"),
    pytest.param(snapshot([{**neuron(0), "uid": "zero"}]), "neurons[0].uid must be a whole number", id="uid-text"),
    pytest.param(snapshot([{**neuron(0), "uid": -1}]), "neurons[0].uid must be a whole number", id="uid-negative"),
    pytest.param(snapshot([neuron(0, incentive="high")]), "neurons[0].incentive must be a number", id="incentive"),
    pytest.param(snapshot([neuron(0, active="yes")]), "neurons[0].active must be true or false", id="active"),
    pytest.param(snapshot([neuron(0, axon="10.0.0.1")]), "neurons[0].axon must be 'ip:port'", id="axon-no-port"),
    pytest.param(snapshot([neuron(0), neuron(0)]), "duplicate uid 0", id="duplicate-uid"),
    pytest.param({**snapshot([]), "neurons": {}}, "neurons must be a list", id="neurons-not-a-list"),
    pytest.param({**snapshot([]), "block": "latest"}, "block must be a whole number", id="block-text"),
    pytest.param(snapshot([neuron(0)], netuid=9), "is for netuid 9 but the endpoint serves netuid 3", id="netuid"),
]


@pytest.mark.parametrize(("content", "message"), INVALID)
def test_an_invalid_snapshot_is_a_clear_error_and_changes_nothing(config, snapshot_file, content, message):
    write(snapshot_file, snapshot([neuron(0, incentive=0.3)], block=10))
    sync_metagraph()
    config.refresh_from_db()
    synced_at = config.metagraph_synced_at

    snapshot_file.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ValueError) as info:
        sync_metagraph()

    assert message in str(info.value)
    assert str(snapshot_file) in str(info.value) or "netuid" in message
    assert [(n.uid, n.incentive, n.active) for n in rows().values()] == [(0, 0.3, True)]
    config.refresh_from_db()
    assert (config.metagraph_synced_at, config.metagraph_block) == (synced_at, 10)


def test_a_missing_file_is_named_in_the_error(config, snapshot_file):
    with pytest.raises(ValueError, match=f"metagraph file {snapshot_file} does not exist"):
        sync_metagraph()


def test_a_minimal_neuron_gets_defaults(tmp_path):
    path = tmp_path / "m.json"
    write(path, snapshot([{"uid": 4, "hotkey": "5Only", "axon": None}]))
    loaded = load_snapshot(path)["neurons"][0]
    assert loaded == {
        "uid": 4,
        "hotkey": "5Only",
        "coldkey": "",
        "axon": "",
        "incentive": 0.0,
        "trust": 0.0,
        "stake": 0.0,
        "validator_permit": False,
        "active": True,
    }


# --- Directory ------------------------------------------------------------------


def test_directory_ranks_serving_neurons_by_incentive_then_lower_uid(config):
    sync_metagraph(
        snapshot=snapshot(
            [
                neuron(0, incentive=0.2),
                neuron(1, incentive=0.5),
                neuron(2, incentive=0.2),
                neuron(3, incentive=0.9, axon=""),  # serves nothing
                neuron(4, incentive=0.8, active=False),  # gone
                neuron(5, incentive=0.5),
                neuron(6, incentive=0.0),
            ]
        )
    )
    view = directory()

    assert [n.uid for n in view.ranked] == [1, 5, 0, 2, 6]
    assert [n.uid for n in view.top_n(3)] == [1, 5, 0]
    assert [n.uid for n in view.top_n(50)] == [1, 5, 0, 2, 6]
    assert view.get(3) == NeuronInfo(3, "5Hotkey03", "5Coldkey03", "", 0.9, 0.5, 100.0, False, True)
    assert not view.get(3).serving and not view.get(4).serving and view.get(1).serving
    assert view.get(99) is None
    assert (view.network, view.netuid, view.block) == ("local", NETUID, 1234)
    assert view.synced_at is not None and not view.empty


def test_directory_network_is_the_one_the_metagraph_came_from(config):
    sync_metagraph(snapshot=snapshot([neuron(0)], network="finney"))
    assert directory().network == "finney"


def test_directory_is_empty_before_any_sync(config):
    view = directory()
    assert view.empty and view.ranked == () and view.top_n(5) == []
    assert view.block is None and view.synced_at is None


def test_directory_is_served_from_memory_within_the_cache_window(config, settings, django_assert_num_queries):
    settings.METAGRAPH_CACHE_SECONDS = 60
    sync_metagraph(snapshot=snapshot([neuron(0)]))
    first = directory()

    with django_assert_num_queries(0):
        again = directory()
        from_async = asyncio.run(adirectory())
    assert again is first and from_async is first

    forget_directory()
    with django_assert_num_queries(2):
        reloaded = directory()
    assert reloaded is not first and reloaded.get(0) == first.get(0)


def test_a_stale_directory_is_reloaded(config, settings, django_assert_num_queries):
    settings.METAGRAPH_CACHE_SECONDS = 0
    first = directory()
    Neuron.objects.create(netuid=NETUID, uid=8, hotkey="5New", axon="10.0.0.9:9100")
    with django_assert_num_queries(2):
        second = directory()
    assert first.get(8) is None and second.get(8).hotkey == "5New"


# --- manage.py metagraph sync | show ---------------------------------------------


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("metagraph", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_metagraph_sync_command_prints_a_summary(config, snapshot_file):
    write(snapshot_file, snapshot([neuron(0), neuron(1)], block=4321))
    out, _ = run("sync")
    assert out.strip() == (
        "Synced metagraph: network local, netuid 3, block 4321, 2 neurons (2 created, 0 updated, 0 deactivated)."
    )
    assert len(rows()) == 2


def test_metagraph_sync_command_with_a_missing_file_exits_1(config, snapshot_file):
    err = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("metagraph", "sync", stdout=StringIO(), stderr=err)
    assert exit_info.value.code == 1
    assert err.getvalue().strip() == f"Error: metagraph file {snapshot_file} does not exist"
    assert not rows()


def test_metagraph_show_lists_neurons_and_the_sync_header(config):
    sync_metagraph(snapshot=snapshot([neuron(0, incentive=0.25), neuron(1, axon="")], block=999))
    out, _ = run("show")
    header = out.splitlines()[0]
    assert "netuid 3 on local: block 999" in header and "2 neurons, 1 serving" in header
    assert "5Hotkey00" in out and "10.0.0.1:9100" in out and "0.2500" in out
    assert "5Hotkey01" in out

    serving, _ = run("show", "--serving")
    assert "5Hotkey00" in serving and "5Hotkey01" not in serving


def test_metagraph_show_before_any_sync(config):
    out, _ = run("show")
    assert "never synced" in out and "No neurons." in out


# --- Chain source (the SDK's Client over an in-memory Substrate) -----------------

CHAIN_NEURONS = [
    {
        "hotkey": "5ChainHot0",
        "coldkey": "5ChainCold0",
        "axon": "203.0.113.5:8091",
        "incentive": 0.25,
        "trust": 1.0,
        "stake": 1000.0,
        "validator_permit": True,
        "active": True,
    },
    {
        "hotkey": "5ChainHot1",
        "coldkey": "5ChainCold1",
        "axon": None,
        "incentive": 0.0,
        "trust": 0.0,
        "stake": 0.5,
        "validator_permit": False,
        "active": False,
    },
]


@pytest.fixture
def chain(tmp_path, monkeypatch) -> FakeSubstrate:
    # Client.connect() caches token symbols on disk; keep that out of $HOME.
    monkeypatch.setenv("BTCLI_TOKEN_SYMBOLS_CACHE", str(tmp_path / "token_symbols.json"))
    return FakeSubstrate(block=5000, metagraphs={NETUID: metagraph_record(NETUID, 5000, CHAIN_NEURONS)})


async def test_chain_metagraph_becomes_a_snapshot(chain):
    data = await fetch_chain_snapshot("local", NETUID, substrate=chain)

    assert (data["network"], data["netuid"], data["block"]) == ("local", NETUID, 5000)
    first, second = data["neurons"]
    assert first["uid"] == 0 and first["hotkey"] == "5ChainHot0" and first["coldkey"] == "5ChainCold0"
    assert first["axon"] == "203.0.113.5:8091"
    assert first["incentive"] == pytest.approx(0.25, abs=1e-4) and first["trust"] == 1.0
    assert first["stake"] == 1000.0 and first["validator_permit"] is True and first["active"] is True
    assert second["axon"] == "" and second["stake"] == 0.5 and second["active"] is False
    assert chain.runtime_calls[0][:3] == ("SubnetInfoRuntimeApi", "get_metagraph", [NETUID])
    assert chain.closed


def test_chain_snapshot_syncs_into_neurons(config, chain):
    data = asyncio.run(fetch_chain_snapshot("local", NETUID, substrate=chain))
    result = sync_metagraph(snapshot=data)

    assert (result.created, result.block, result.network) == (2, 5000, "local")
    stored = rows()
    assert stored[0].axon == "203.0.113.5:8091" and stored[0].serving and stored[0].validator_permit
    assert stored[1].axon == "" and not stored[1].active
    assert [n.uid for n in directory().ranked] == [0]


async def test_a_subnet_that_does_not_exist_is_a_clear_error(chain):
    with pytest.raises(ValueError, match="subnet 7 does not exist on local"):
        await fetch_chain_snapshot("local", 7, substrate=chain)
    assert chain.closed


async def test_an_unknown_network_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown network 'nowhere'"):
        await fetch_chain_snapshot("nowhere", NETUID)


def test_a_stale_directory_is_served_while_it_reloads_in_the_background(transactional_db, settings):
    """No request waits for the reload: the one that finds the copy expired
    gets it (one window late at most) and the reload happens beside it."""
    row = EndpointConfig.load()
    row.network, row.netuid = "local", NETUID
    row.save()
    settings.METAGRAPH_CACHE_SECONDS = 0.2
    first = directory()
    Neuron.objects.create(netuid=NETUID, uid=8, hotkey="5New", axon="10.0.0.9:9100")

    async def after_expiry():
        await asyncio.sleep(0.25)
        stale = await adirectory()  # expired: served as is, reloaded beside
        for _ in range(100):
            await asyncio.sleep(0.01)
            fresh = await adirectory()
            if fresh is not stale:
                return stale, fresh
        return stale, stale

    stale, fresh = asyncio.run(after_expiry())
    assert stale is first and stale.get(8) is None
    assert fresh.get(8).hotkey == "5New"
