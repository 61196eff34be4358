"""Counting tokens offline: cl100k_base from the vendored file, never the network."""

from __future__ import annotations

import socket

import pytest
import tiktoken.load

from endpoint.core import tokens
from endpoint.core.usage import COUNTED, MINER, Usage, counted_usage, reported_usage


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach the network fails the test; the encoding is loaded afresh."""

    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse)  # tiktoken's downloading reader
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "/nonexistent")
    tokens.encoding.cache_clear()
    yield
    tokens.encoding.cache_clear()


def test_counts_as_openai_does_with_no_network(no_network):
    assert tokens.count_text("Hello world") == 2  # "Hello", " world"
    assert tokens.count_text("Miner 0 heard: Hello world") == 8
    assert tokens.count_text("") == 0
    # 3 to prime the reply + 3 for the message + "user" + "Hello world"
    assert tokens.count_messages([{"role": "user", "content": "Hello world"}]) == 9
    assert tokens.count_messages([{"role": "user", "name": "ann", "content": "Hello world"}]) == 11


def test_text_parts_count_as_their_text():
    parts = [{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}]
    assert tokens.count_messages([{"role": "user", "content": parts}]) == 9


def test_special_token_spellings_in_a_prompt_are_plain_text():
    assert tokens.count_text("<|endoftext|>") > 1


def test_the_vendored_file_is_the_one_tiktoken_checks():
    assert tiktoken.load.check_hash(tokens.RANKS_FILE.read_bytes(), tokens.RANKS_SHA256)


@pytest.mark.parametrize(
    "usage",
    [
        None,
        "12",
        {"prompt_tokens": 1, "completion_tokens": 2},
        {"prompt_tokens": -1, "completion_tokens": 2, "total_tokens": 1},
        {"prompt_tokens": 1.5, "completion_tokens": 2, "total_tokens": 3.5},
        {"prompt_tokens": True, "completion_tokens": 2, "total_tokens": 3},
        {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 4},
        {"prompt_tokens": 2**31, "completion_tokens": 0, "total_tokens": 2**31},  # no log column holds it
    ],
)
def test_a_malformed_miner_usage_is_not_taken(usage):
    assert reported_usage(usage) is None


def test_a_well_formed_miner_usage_is_taken():
    usage = reported_usage({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "extra": {}})
    assert usage == Usage(1, 2, MINER)
    assert usage.json() == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


def test_counted_usage_sums_every_answer():
    usage = counted_usage([{"role": "user", "content": "Hello world"}], ["Hello world", "Hello"])
    assert usage == Usage(9, 3, COUNTED)
