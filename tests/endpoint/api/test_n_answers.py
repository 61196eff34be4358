"""``n`` on /v1/chat/completions: n answers from n distinct miners, one
choice each, charged per answer delivered (n held up front)."""

from __future__ import annotations

import httpx
import openai
import pytest

from endpoint.core.config import do_set_config
from keys.models import ApiKey
from logs.models import Request

from .test_openai import HELLO, client
from .test_openai_conformance import assert_openai_error, auth

pytestmark = pytest.mark.django_db(transaction=True)

COST = 2


@pytest.fixture
def priced(network):
    do_set_config("cost_per_answer", str(COST))
    return network


def spent(key) -> int:
    return 1000 - ApiKey.objects.get(pk=key.key.pk).credits  # the key fixture starts with 1000


def test_n_answers_come_from_n_distinct_miners_and_cost_n_answers(live_server_url, key, priced):
    completion = client(live_server_url, key.raw).chat.completions.create(model="top_n:8", messages=HELLO, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    answers = completion.to_dict()["bittensor"]["answers"]
    uids = [a["uid"] for a in answers]
    assert len(set(uids)) == 3 and [a["index"] for a in answers] == [0, 1, 2]
    for choice, uid in zip(completion.choices, uids, strict=True):
        assert choice.message.content == f"Miner {uid} heard: What is 1+1?"
    entry = Request.objects.get(id=completion.id.removeprefix("chatcmpl-"))
    assert entry.credits_charged == spent(key) == 3 * COST
    assert sorted(m.uid for m in entry.miner_responses.filter(is_success=True)) == sorted(uids)
    for uid in uids:  # each miner was asked for one answer, not for n
        assert "n" not in priced.miners[uid].seen[-1].body
    usage = completion.usage
    assert usage.completion_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_a_failing_miner_means_fewer_answers_and_a_smaller_charge(live_server_url, key, priced):
    priced.set_behaviour(1, mode="error")
    completion = client(live_server_url, key.raw).chat.completions.create(model="uids:0,1,2", messages=HELLO, n=3)
    assert [c.index for c in completion.choices] == [0, 1]
    info = completion.to_dict()["bittensor"]
    assert sorted(a["uid"] for a in info["answers"]) == [0, 2] and [f["uid"] for f in info["failed"]] == [1]
    assert spent(key) == 2 * COST
    assert Request.objects.get().credits_charged == 2 * COST


def test_n_above_the_models_miners_answers_with_what_there_is(live_server_url, key, priced):
    completion = client(live_server_url, key.raw).chat.completions.create(model="uid:4", messages=HELLO, n=5)
    assert [(c.index, c.message.content) for c in completion.choices] == [(0, "Miner 4 heard: What is 1+1?")]
    assert spent(key) == COST


def test_n_with_every_miner_failing_is_502_and_free(live_server_url, key, priced):
    priced.set_behaviour([0, 1], mode="error")
    with pytest.raises(openai.APIStatusError) as info:
        client(live_server_url, key.raw).chat.completions.create(model="uids:0,1", messages=HELLO, n=2)
    assert info.value.status_code == 502
    assert spent(key) == 0


@pytest.mark.parametrize(("n", "stream"), [(0, False), (129, False), ("2", False), (2.0, False), (2, True)], ids=str)
def test_a_bad_n_is_400_naming_n(live_server_url, key, priced, n, stream):
    body = {"model": "top_n:3", "messages": HELLO, "n": n, "stream": stream}
    r = httpx.post(live_server_url + "/v1/chat/completions", json=body, headers=auth(key))
    assert r.status_code == 400
    assert_openai_error(r.json(), "InvalidRequestBody", "n")
    assert spent(key) == 0
