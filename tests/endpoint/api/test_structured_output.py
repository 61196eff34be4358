"""Structured output across unreliable miners: with ``response_format``
``json_schema`` and ``strict: true`` only an answer that parses and follows
the schema is delivered and charged; a miner answering prose or the wrong
shape counts as failed, so the call moves on to the next miner. The
official SDK's ``parse()`` gets its typed object."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pydantic
import pytest

from endpoint.core.errors import MinerFailure
from endpoint.network.structured import AnswerFormat
from keys.models import ApiKey, CreditEntry
from logs.models import MinerResponse, Request

from .test_best_routing import by_incentive
from .test_openai import client

pytestmark = pytest.mark.django_db(transaction=True)

ASK = [{"role": "user", "content": "Name a city and its population."}]
CITY = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "population": {"type": "integer", "minimum": 0},
        "size": {"type": "string", "enum": ["small", "large"]},
    },
    "required": ["city", "population", "size"],
    "additionalProperties": False,
}


@pytest.fixture(autouse=True)
def _first_pick_is_the_favourite(settings):
    # Exploration would now and then send the prompt to another miner first;
    # these tests count on the favourite (which ignores formats) being asked first.
    settings.ROUTING_EXPLORATION = 0.0


def strict(schema: dict = CITY) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}}


def credits_of(key) -> int:
    return ApiKey.objects.get(pk=key.key.pk).credits


def only_one_follows_formats(network) -> int:
    """Every miner answers prose but the last by incentive, which is also the
    slowest: in a race of all of them, the prose arrives first."""
    good = by_incentive(network)[-1]
    network.set_behaviour([uid for uid in range(8) if uid != good], mode="ignore_format")
    network.set_behaviour(good, latency=0.2)
    return good


def test_a_miner_answering_prose_is_passed_over_for_one_that_follows_the_schema(live_server_url, key, network):
    good = only_one_follows_formats(network)
    completion = client(live_server_url, key.raw).chat.completions.create(
        model="top_n:8", messages=ASK, response_format=strict()
    )
    answer = json.loads(completion.choices[0].message.content)
    jsonschema.validate(answer, CITY)
    assert completion.to_dict()["bittensor"]["uid"] == good
    assert credits_of(key) == 999  # the valid answer only
    entry = Request.objects.get(route="/v1/chat/completions")
    rows = dict(MinerResponse.objects.filter(request=entry).values_list("uid", "error"))
    assert rows.pop(good) == ""
    assert len(rows) == 7 and all("not the JSON the request asked for" in error for error in rows.values())


def test_best_moves_on_from_a_miner_answering_prose(live_server_url, key, network, settings):
    settings.ROUTING_MAX_RETRIES = 7  # whatever order the route learnt, it gets to the good miner
    network.set_behaviour(range(8), mode="ignore_format")
    network.set_behaviour(by_incentive(network)[1], mode="ok")
    completion = client(live_server_url, key.raw).chat.completions.create(
        model="best:1", messages=ASK, response_format=strict()
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content), CITY)
    entry = Request.objects.get(route="/v1/chat/completions")
    # Whichever miner the route asked first, every one before the good one was passed over.
    failed = MinerResponse.objects.filter(request=entry, is_success=False)
    assert all("not the JSON" in m.error for m in failed)
    assert credits_of(key) == 999


def test_no_valid_answer_is_a_502_and_nothing_is_charged(live_server_url, key, network):
    network.set_behaviour(range(8), mode="ignore_format")
    with pytest.raises(openai.APIStatusError) as info:
        client(live_server_url, key.raw).chat.completions.create(
            model="top_n:3", messages=ASK, response_format=strict()
        )
    assert info.value.status_code == 502
    assert credits_of(key) == 1000
    assert Request.objects.get().credits_charged == 0


def test_streamed_structured_output_relays_only_a_valid_answer(live_server_url, key, network):
    good = only_one_follows_formats(network)
    chunks = list(
        client(live_server_url, key.raw).chat.completions.create(
            model="top_n:8", messages=ASK, response_format=strict(), stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    jsonschema.validate(json.loads(text), CITY)
    assert chunks[0].to_dict()["bittensor"]["uid"] == good
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert credits_of(key) == 999
    failed = MinerResponse.objects.exclude(uid=good)
    assert failed.count() == 7 and all(not m.is_success and "not the JSON" in m.error for m in failed)


class City(pydantic.BaseModel):
    city: str
    population: int


def test_the_sdks_parse_gets_a_typed_object_through_an_unreliable_subnet(live_server_url, key, network):
    network.set_behaviour(by_incentive(network)[0], mode="ignore_format")
    completion = client(live_server_url, key.raw).chat.completions.parse(
        model="best:1", messages=ASK, response_format=City
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, City) and parsed.city.startswith("Miner ")


def test_a_refusal_is_an_answer_under_a_schema_too(live_server_url, key, network):
    network.set_behaviour(range(8), mode="refuse")
    completion = client(live_server_url, key.raw).chat.completions.parse(
        model="best:1", messages=ASK, response_format=City
    )
    message = completion.choices[0].message
    assert message.parsed is None and "will not help" in message.refusal
    assert credits_of(key) == 999


def test_json_mode_refuses_prose_but_takes_any_object(live_server_url, key, network):
    good = only_one_follows_formats(network)
    completion = client(live_server_url, key.raw).chat.completions.create(
        model="top_n:8", messages=ASK, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(completion.choices[0].message.content), dict)
    assert completion.to_dict()["bittensor"]["uid"] == good


def test_an_invalid_schema_is_the_clients_error_and_holds_nothing(live_server_url, key, network):
    with pytest.raises(openai.BadRequestError) as info:
        client(live_server_url, key.raw).chat.completions.create(
            model="best:1", messages=ASK, response_format=strict({"type": "no-such-type"})
        )
    assert info.value.body["param"] == "response_format"
    assert "not a valid JSON Schema" in info.value.body["message"]
    assert credits_of(key) == 1000
    assert not CreditEntry.objects.filter(key=key.key, kind=CreditEntry.HOLD).exists()
    assert not any(m.seen for m in network.miners)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("Paris, about two million", "not the JSON"),
        ('["Paris", 2000000]', "not an object"),
        ('{"city": "Paris", "population": 2000000}', "at the top level: 'size' is a required property"),
        ('{"city": "Paris", "population": -1, "size": "large"}', "at population"),
        ('{"city": "Paris", "population": 1, "size": "huge"}', "at size"),
    ],
)
def test_what_a_strict_schema_refuses_and_why(content, complaint):
    with pytest.raises(MinerFailure) as info:
        AnswerFormat.from_request(strict()).check({"content": content})
    assert complaint in str(info.value)
    AnswerFormat.from_request(strict()).check({"content": '{"city": "Paris", "population": 1, "size": "large"}'})


def test_a_structured_stream_the_database_cant_record_stops_after_its_first_content(
    live_server_url, key, network, monkeypatch
):
    # Read whole to be checked, the answer is still relayed as a stream is:
    # its first content, then the record of the charge, then the rest.
    from django.db import OperationalError

    from endpoint import gateway

    real = gateway.write_request_log

    async def early_record_fails(entry, settlement, *, replace=False):
        if not replace:
            raise OperationalError("the database went away")
        return await real(entry, settlement, replace=replace)

    monkeypatch.setattr(gateway, "write_request_log", early_record_fails)
    body = {"model": "best:1", "messages": ASK, "response_format": strict(), "stream": True}
    with httpx.stream(
        "POST", live_server_url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key.raw}"}
    ) as r:
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "DatabaseUnavailable"
    chunks = [json.loads(e) for e in events[:-2]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    assert text == '{"city":"Miner '  # the first word only, not the whole answer
    assert credits_of(key) == 1000
    assert Request.objects.get().credits_charged == 0
