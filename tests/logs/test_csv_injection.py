"""The log export is opened in spreadsheets: text a client wrote must not run there."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from tests.factories import ApiKeyFactory, RequestLogFactory, UserFactory

FORMULAS = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"]


@pytest.fixture
def console(postgres) -> Client:
    client = Client()
    client.force_login(UserFactory(username="operator", is_staff=True, is_superuser=True))
    return client


def exported(console) -> list[dict]:
    return list(
        csv.DictReader(io.StringIO(b"".join(console.get("/admin/logs/request/export/").streaming_content).decode()))
    )


@pytest.mark.parametrize("formula", FORMULAS)
def test_formula_like_prompts_and_key_names_are_neutralised(console, formula):
    key = ApiKeyFactory(name=formula)
    RequestLogFactory(key=key, messages=[{"role": "user", "content": formula}], credits_charged=-1)
    (row,) = exported(console)
    assert row["key_name"] == "'" + formula
    assert row["prompt"] == "'" + formula
    assert row["credits_charged"] == "-1"  # numbers are left as numbers


def test_ordinary_text_is_unchanged(console):
    RequestLogFactory(key=ApiKeyFactory(name="partner 1"), messages=[{"role": "user", "content": "a = b?"}])
    (row,) = exported(console)
    assert (row["key_name"], row["prompt"]) == ("partner 1", "a = b?")
