"""Benchmarks run the server as users run it: a separate uvicorn process on
the test database, with miners from a real local subnet."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from tests.servers import database_env, start_localnet, start_server, stop

__all__ = ["report", "start_localnet"]


def report(name: str, **figures) -> None:
    """One JSON line per figure, as `make bench` promises."""
    print(json.dumps({"bench": name, **figures}), flush=True)


@pytest.fixture
def server(transactional_db):
    if connection.vendor != "postgresql":
        pytest.fail("benchmarks need PostgreSQL (DATABASE_URL)")
    proc, base = start_server(database_env())
    yield base
    stop(proc)
