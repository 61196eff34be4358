"""`manage.py subnets list|add|edit|remove`, as an operator types it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from endpoint.core.models import EndpointConfig
from endpoint.core.subnets import find_subnet, list_subnets


def run(*args: str) -> tuple[str, str, int]:
    out, err = StringIO(), StringIO()
    try:
        call_command("subnets", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    return out.getvalue(), err.getvalue(), code


def test_add_then_list_shows_both_subnets(db):
    out, err, code = run(
        "add", "images", "--name", "Image generation", "--kind", "image", "--netuid", "19",
        "--network", "finney", "--miner-path", "/v1/images/generations", "--price", "5",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.strip() == (
        "Added subnet images: Image generation (netuid 19). Run `manage.py metagraph sync` to read its miners."
    )

    listing, _, _ = run("list")
    lines = listing.splitlines()
    chat = next(line for line in lines if "│ chat " in line)
    images = next(line for line in lines if "│ images " in line)
    assert "Chat" in chat and "never" in chat
    for cell in ("Image generation", "image", "finney", "19", "chain", "/v1/images/generations", "5", "yes", "never"):
        assert cell in images


def test_edit_changes_only_the_options_given(db):
    run("add", "speech", "--name", "Speech", "--kind", "speech", "--netuid", "21")
    out, _, code = run("edit", "speech", "--price", "3", "--disable")
    assert code == 0 and out.strip() == "Edited subnet speech: enabled, price."
    speech = find_subnet("speech")
    assert (speech.price, speech.enabled, speech.kind, speech.netuid) == (3, False, "speech", 21)


def test_editing_the_chat_subnet_is_editing_the_config(db):
    _, _, code = run("edit", "chat", "--price", "7", "--strategy", "top_n:2")
    assert code == 0
    config = EndpointConfig.load()
    assert (config.cost_per_answer, config.default_strategy) == (7, "top_n:2")


def test_remove(db):
    run("add", "embed", "--name", "Embeddings", "--kind", "embeddings", "--netuid", "22")
    out, _, code = run("remove", "embed")
    assert code == 0 and out.strip() == "Removed subnet embed."
    assert [s.slug for s in list_subnets()] == ["chat"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("add", "images", "--name", "I", "--netuid", "many"), "Error: --netuid: expected a whole number, got 'many'"),
        (("add", "images", "--netuid", "19"), "Error: --name: a new subnet needs its name"),
        (("add", "images", "--name", "I", "--netuid", "19", "--kind", "video"), "Error: --kind: expected one of chat"),
        (("edit", "chat", "--disable"), "Error: --enable/--disable: the chat subnet serves /chat and /v1"),
        (("edit", "chat"), "Error: nothing to change"),
        (("edit", "nope", "--price", "1"), "Error: no subnet 'nope'; known: chat"),
        (("remove", "chat"), "Error: the chat subnet serves /chat and /v1: it can't be removed"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_1(db, args, error):
    out, err, code = run(*args)
    assert code == 1 and out == ""
    assert err.startswith(error) and len(err.strip().splitlines()) == 1
    assert [s.slug for s in list_subnets()] == ["chat"]
