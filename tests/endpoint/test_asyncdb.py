"""A served call holds and settles credits from the worker's event loop
(endpoint.core.asyncdb), with the same guarantees as on DB threads."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest
from django.db import DataError, connection

from endpoint.core import asyncdb
from keys.models import ApiKey
from keys.services import do_create_key
from logs.models import Request
from tests.endpoint.api.conftest import HELLO
from tests.servers import database_env, start_server, stop


def last_gateway_statements() -> list[str]:
    """What each of the event-loop pool's connections ran last."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
            [asyncdb.APPLICATION_NAME],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def server(postgres, redis_url):
    proc, base = start_server({**database_env(), "REDIS_URL": redis_url})
    yield base
    stop(proc)


def test_a_served_call_is_charged_once_and_logged_from_the_event_loop(network, server):
    new = do_create_key(name="loop", credits=5)

    async def fire(n: int) -> list[int]:
        async with httpx.AsyncClient(base_url=server, timeout=20) as client:
            headers = {"Authorization": f"Bearer {new.raw}"}
            calls = [client.post("/chat", json={"messages": HELLO}, headers=headers) for _ in range(n)]
            return [r.status_code for r in await asyncio.gather(*calls)]

    statuses = asyncio.run(fire(8))
    assert statuses.count(200) == 5 and statuses.count(402) == 3  # 5 credits, never overspent
    key = ApiKey.objects.get(pk=new.key.pk)
    assert (key.credits, key.api_request_count) == (0, 5)
    assert Request.objects.filter(key=key, status=200, credits_charged=1).count() == 5
    # The holds and the log-and-settle statements went through the worker's loop pool.
    last = last_gateway_statements()
    assert any(q.startswith("WITH saved AS (INSERT INTO logs_request") for q in last), last


@pytest.mark.django_db(transaction=True)
async def test_the_loop_pool_reports_database_errors_as_django_does(postgres):
    assert await asyncdb.open_pool()
    try:
        with pytest.raises(DataError):
            await asyncdb.execute("SELECT 1 / %s", [0])
        assert await asyncdb.execute("SELECT 1", []) == 1  # the pool gave the broken-off connection back usable
    finally:
        await asyncdb.close_pool()


@pytest.mark.django_db(transaction=True)
async def test_a_served_call_builds_no_django_connection_object(network, api, monkeypatch):
    # Each request runs in a context of its own, where touching
    # django.db.connection builds a new DatabaseWrapper (about a tenth of a
    # millisecond); the hot path asks the backend class instead. (A DB
    # thread builds its own once, which is fine.) If Django changes how
    # connections are kept, this says so.
    from django.db import connections

    from endpoint.core.db import run_db

    key = await run_db(do_create_key, name="no-wrapper", credits=10)
    built = []
    original = type(connections).create_connection
    monkeypatch.setattr(
        type(connections),
        "create_connection",
        lambda self, alias: built.append(threading.current_thread().name) or original(self, alias),
    )
    headers = {"Authorization": f"Bearer {key.raw}"}
    for _ in range(3):
        answer = await api.post("/v1/chat/completions", json={"model": "uid:0", "messages": HELLO}, headers=headers)
        assert answer.status_code == 200, answer.text
    assert threading.current_thread().name not in built
    assert await run_db(lambda: Request.objects.filter(key_id=key.key.pk).count()) == 3
