"""Two server processes behind one Redis share a key's limit."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from endpoint.core.config import do_set_config
from keys.rate_limits import do_add_rate_limit
from keys.services import do_create_key
from tests.servers import database_env, start_server, stop

from .conftest import HELLO


@pytest.fixture
def two_servers(postgres, redis_url):
    env = {**database_env(), "REDIS_URL": redis_url}
    first, second = start_server(env), start_server(env)
    yield first[1], second[1]
    stop(first[0])
    stop(second[0])


async def fire(bases: tuple[str, str], raw: str, n: int) -> list[int]:
    async with httpx.AsyncClient(timeout=20) as client:
        calls = [
            client.post(bases[i % 2] + "/chat", json={"messages": HELLO}, headers={"Authorization": f"Bearer {raw}"})
            for i in range(n)
        ]
        return [r.status_code for r in await asyncio.gather(*calls)]


def test_two_processes_do_not_double_the_limit(network, two_servers):
    do_set_config("rate_limiting_enabled", "true")
    new = do_create_key(name="shared", credits=None)
    do_add_rate_limit(6, 60, key=new.key)
    statuses = asyncio.run(fire(two_servers, new.raw, 20))
    assert statuses.count(200) == 6
    assert statuses.count(429) == 14
