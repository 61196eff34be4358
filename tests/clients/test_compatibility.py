"""The client × feature table of README ("Clients that work"): each cell is
one test here, run against the gateway on a real socket with real localnet
miners, through the client's own public API. The README table is checked
against CELLS, so it can't claim a cell no test backs.

The first miner by incentive ignores the asked format, so "structured"
also shows the guarantee: the client gets a valid object anyway."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import openai
import pydantic
import pytest

from keys.services import do_create_key
from tests.conftest import missing_service

from ..endpoint.api.test_best_routing import by_incentive

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = Path(__file__).parent / "node"
ASK = [{"role": "user", "content": "What's the weather in Paris?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


class City(pydantic.BaseModel):
    city: str
    population: int


FEATURES = ("create", "stream", "tools", "structured", "usage", "errors")
CLIENTS = ("openai-python", "openai-node", "langchain", "litellm", "openai-agents")
CELLS = [(client, feature) for client in CLIENTS for feature in FEATURES]


@pytest.fixture(autouse=True)
def _first_pick_is_the_favourite(settings):
    # Exploration would now and then send the prompt to another miner first;
    # these tests count on the favourite (which ignores formats) being asked first.
    settings.ROUTING_EXPLORATION = 0.0


@pytest.fixture
def gateway(live_server_url, network):
    """What every cell needs: the /v1 base, a key with credits, one without,
    and a subnet whose favourite miner ignores response formats."""
    network.set_behaviour(by_incentive(network)[0], mode="ignore_format")
    keys = {"key": do_create_key(name="client", credits=1000), "empty_key": do_create_key(name="empty", credits=0)}
    return {"base": live_server_url + "/v1", **{name: new.raw for name, new in keys.items()}}


# --- openai-python ------------------------------------------------------------------


def python_client(gateway, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway["base"], api_key=key or gateway["key"], max_retries=0, timeout=20)


def python_cell(feature: str, gateway) -> None:
    chat = python_client(gateway).chat.completions
    if feature == "create":
        completion = chat.create(model="best:1", messages=ASK)
        assert completion.object == "chat.completion" and completion.choices[0].message.content.startswith("Miner ")
    elif feature == "stream":
        chunks = list(chat.create(model="best:1", messages=ASK, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.startswith("Miner ") and chunks[-1].choices[0].finish_reason == "stop"
    elif feature == "tools":
        message = chat.create(model="best:1", messages=ASK, tools=[WEATHER]).choices[0].message
        assert message.tool_calls[0].function.name == "get_weather"
        assert json.loads(message.tool_calls[0].function.arguments) == {"city": "example"}
    elif feature == "structured":
        parsed = chat.parse(model="best:1", messages=ASK, response_format=City).choices[0].message.parsed
        assert isinstance(parsed, City)
    elif feature == "usage":
        usage = chat.create(model="best:1", messages=ASK).usage
        assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        chunks = list(chat.create(model="best:1", messages=ASK, stream=True, stream_options={"include_usage": True}))
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    elif feature == "errors":
        with pytest.raises(openai.AuthenticationError):
            python_client(gateway, "vep_not-a-key").chat.completions.create(model="best:1", messages=ASK)
        with pytest.raises(openai.APIStatusError) as empty:
            python_client(gateway, gateway["empty_key"]).chat.completions.create(model="best:1", messages=ASK)
        assert empty.value.status_code == 402 and empty.value.type == "insufficient_quota"
        with pytest.raises(openai.NotFoundError):
            chat.create(model="gpt-17", messages=ASK)


# --- openai-node --------------------------------------------------------------------


def node_cell(feature: str, gateway) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "openai").is_dir():
        missing_service("Node.js with the openai package (make test installs it: npm ci in tests/clients/node)")
    given = {"VEP_BASE_URL": gateway["base"], "VEP_KEY": gateway["key"], "VEP_EMPTY_KEY": gateway["empty_key"]}
    env = {**os.environ, **given}
    run = subprocess.run(
        [node, "check.mjs", feature], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads(run.stdout)
    if feature == "create":
        assert out["object"] == "chat.completion" and out["content"].startswith("Miner ") and out["finish"] == "stop"
    elif feature == "stream":
        assert out["content"].startswith("Miner ") and out["chunks"] > 1 and out["finish"] == "stop"
    elif feature == "tools":
        assert (out["finish"], out["name"], out["arguments"]) == ("tool_calls", "get_weather", {"city": "example"})
    elif feature == "structured":
        City.model_validate(out["parsed"])
    elif feature == "usage":
        for usage in (out["usage"], out["streamed"]):
            assert usage["prompt_tokens"] > 0
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    elif feature == "errors":
        assert out["bad_key"]["raised"] == "AuthenticationError"
        assert (out["no_credits"]["status"], out["no_credits"]["code"]) == (402, "APIKeyNotEnoughCredits")
        assert out["unknown_model"]["raised"] == "NotFoundError"


# --- LangChain ----------------------------------------------------------------------


def langchain_model(gateway, key: str | None = None, **kwargs):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=kwargs.pop("model", "best:1"), base_url=gateway["base"], api_key=key or gateway["key"],
        max_retries=0, timeout=20, **kwargs,
    )  # fmt: skip


def langchain_cell(feature: str, gateway) -> None:
    llm = langchain_model(gateway)
    question = ASK[0]["content"]
    if feature == "create":
        assert llm.invoke(question).content.startswith("Miner ")
    elif feature == "stream":
        chunks = list(llm.stream(question))
        assert len(chunks) > 1 and "".join(c.content for c in chunks).startswith("Miner ")
    elif feature == "tools":
        (call,) = llm.bind_tools([WEATHER]).invoke(question).tool_calls
        assert (call["name"], call["args"]) == ("get_weather", {"city": "example"})
    elif feature == "structured":
        answer = llm.with_structured_output(City, method="json_schema", strict=True).invoke(question)
        assert isinstance(answer, City)
    elif feature == "usage":
        assert llm.invoke(question).usage_metadata["input_tokens"] > 0
        streamed = None
        for chunk in langchain_model(gateway, stream_usage=True).stream(question):
            streamed = chunk if streamed is None else streamed + chunk
        assert streamed.usage_metadata["output_tokens"] > 0
    elif feature == "errors":
        with pytest.raises(openai.AuthenticationError):
            langchain_model(gateway, "vep_not-a-key").invoke(question)
        with pytest.raises(openai.APIStatusError) as empty:
            langchain_model(gateway, gateway["empty_key"]).invoke(question)
        assert empty.value.status_code == 402
        with pytest.raises(openai.NotFoundError):
            langchain_model(gateway, model="gpt-17").invoke(question)


# --- LiteLLM as a client ----------------------------------------------------------


def litellm_call(gateway, key: str | None = None, model: str = "best:1", **kwargs):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of its price list at import
    import litellm

    return litellm.completion(
        model=f"openai/{model}", api_base=gateway["base"], api_key=key or gateway["key"], messages=ASK,
        max_retries=0, timeout=20, **kwargs,
    )  # fmt: skip


def litellm_cell(feature: str, gateway) -> None:
    if feature == "create":
        assert litellm_call(gateway).choices[0].message.content.startswith("Miner ")
    elif feature == "stream":
        chunks = list(litellm_call(gateway, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert len(chunks) > 1 and text.startswith("Miner ")
    elif feature == "tools":
        (call,) = litellm_call(gateway, tools=[WEATHER]).choices[0].message.tool_calls
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "example"}
    elif feature == "structured":
        City.model_validate_json(litellm_call(gateway, response_format=City).choices[0].message.content)
    elif feature == "usage":
        usage = litellm_call(gateway).usage
        assert usage.prompt_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        chunks = list(litellm_call(gateway, stream=True, stream_options={"include_usage": True}))
        assert any(getattr(c, "usage", None) and c.usage.completion_tokens > 0 for c in chunks)
    elif feature == "errors":
        import litellm

        with pytest.raises(litellm.AuthenticationError):
            litellm_call(gateway, "vep_not-a-key")
        with pytest.raises(litellm.APIError) as empty:
            litellm_call(gateway, gateway["empty_key"])
        assert empty.value.status_code == 402
        with pytest.raises(litellm.NotFoundError):
            litellm_call(gateway, model="gpt-17")


# --- the OpenAI Agents SDK ----------------------------------------------------------


def agent(gateway, key: str | None = None, model: str = "best:1", **kwargs):
    from agents import Agent, OpenAIChatCompletionsModel, set_tracing_disabled

    set_tracing_disabled(True)  # its traces would go to OpenAI
    client = openai.AsyncOpenAI(base_url=gateway["base"], api_key=key or gateway["key"], max_retries=0, timeout=20)
    chat = OpenAIChatCompletionsModel(model=model, openai_client=client)
    return Agent(name="helper", instructions="Answer briefly.", model=chat, **kwargs)


def agents_cell(feature: str, gateway) -> None:
    from agents import Runner, function_tool

    question = ASK[0]["content"]
    if feature == "create":
        assert Runner.run_sync(agent(gateway), question).final_output.startswith("Miner ")
    elif feature == "stream":

        async def streamed() -> list[str]:
            run = Runner.run_streamed(agent(gateway), question)
            events = [e async for e in run.stream_events() if e.type == "raw_response_event"]
            return [e.data.delta for e in events if e.data.type == "response.output_text.delta"]

        pieces = asyncio.run(streamed())
        assert len(pieces) > 1 and "".join(pieces).startswith("Miner ")
    elif feature == "tools":
        asked = []

        @function_tool
        def get_weather(city: str) -> str:
            """The weather in a city."""
            asked.append(city)
            return f"Sunny in {city}"

        result = Runner.run_sync(agent(gateway, tools=[get_weather]), question)
        assert asked == ["example"]  # the miner called the tool; the agent ran it
        assert result.final_output.startswith("Miner ") and "Sunny in example" in result.final_output
    elif feature == "structured":
        assert isinstance(Runner.run_sync(agent(gateway, output_type=City), question).final_output, City)
    elif feature == "usage":
        usage = Runner.run_sync(agent(gateway), question).context_wrapper.usage
        assert usage.requests == 1 and usage.input_tokens > 0 and usage.output_tokens > 0
    elif feature == "errors":
        with pytest.raises(openai.AuthenticationError):
            Runner.run_sync(agent(gateway, "vep_not-a-key"), question)
        with pytest.raises(openai.APIStatusError) as empty:
            Runner.run_sync(agent(gateway, gateway["empty_key"]), question)
        assert empty.value.status_code == 402
        with pytest.raises(openai.NotFoundError):
            Runner.run_sync(agent(gateway, model="gpt-17"), question)


RUN = {
    "openai-python": python_cell,
    "openai-node": node_cell,
    "langchain": langchain_cell,
    "litellm": litellm_cell,
    "openai-agents": agents_cell,
}


@pytest.mark.parametrize(("client", "feature"), CELLS, ids=[f"{c}-{f}" for c, f in CELLS])
def test_cell(client, feature, gateway):
    RUN[client](feature, gateway)


def test_the_readme_table_claims_exactly_the_tested_cells():
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- compatibility table -->")[1]
    rows = [line for line in table.strip().splitlines() if line.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")][1:]
    assert header == list(FEATURES)
    claimed = set()
    for row in rows[2:]:
        client, *cells = (c.strip() for c in row.strip("|").split("|"))
        claimed |= {(re.sub(r"[`*]", "", client), f) for f, cell in zip(FEATURES, cells, strict=True) if cell == "yes"}
    assert claimed == set(CELLS)
