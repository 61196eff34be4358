"""Redis down: signing in, signing up, resetting a password and chatting all
keep working. The cache answers as if empty (allauth's and the pages' limits
fail open), and the outage is logged once a minute, not once a request."""

from __future__ import annotations

import logging
import re
import socket

import pytest
from django.core import mail
from django.test import Client

from endpoint.core.db import run_db
from keys.models import ApiKey

from .conftest import PASSWORD, make_user
from .events import events, final_html

pytestmark = pytest.mark.postgres


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_down(redis_url, settings) -> str:
    """The caches as configured for Redis, pointed at a Redis that is not there."""
    url = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CACHES = {alias: {**cache, "LOCATION": url} for alias, cache in settings.CACHES.items()}
    settings.REDIS_URL = url  # the gateway's limiter and miner statistics too
    return url


def outage_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "endpoint.core.cache"]


def test_sign_in_sign_up_and_password_reset_work(postgres, redis_down, caplog):
    make_user("carol@example.com")
    client = Client()
    with caplog.at_level(logging.ERROR, logger="endpoint.core.cache"):
        assert client.get("/accounts/login/").status_code == 200
        wrong = client.post("/accounts/login/", {"login": "carol@example.com", "password": "not it"})
        assert wrong.status_code == 200
        assert "The email address and/or password you specified are not correct." in wrong.content.decode()
        signed_in = client.post("/accounts/login/", {"login": "carol@example.com", "password": PASSWORD})
        assert (signed_in.status_code, signed_in["Location"]) == (302, "/app/")
        assert client.get("/app/").status_code == 200
        assert client.get("/app/keys/").status_code == 200

        assert Client().get("/accounts/password/reset/").status_code == 200
        reset = Client().post("/accounts/password/reset/", {"email": "carol@example.com"})
        assert reset.status_code == 302
        assert mail.outbox[-1].to == ["carol@example.com"]

        new = {"email": "dora@example.com", "password1": PASSWORD, "password2": PASSWORD}
        assert Client().post("/accounts/signup/", new).status_code == 302

    lines = outage_lines(caplog)
    assert len(lines) == 1  # once a minute, however many requests met the outage
    assert f"Redis at {redis_down.removeprefix('redis://')} is unreachable" in lines[0]


async def test_chatting_and_making_keys_work(browser_for, alice, network, redis_down, settings):
    from endpoint.core.config import do_set_config

    await run_db(do_set_config, "rate_limiting_enabled", "true")  # its limiter fails open too
    me = await browser_for(alice)
    assert (await me.page("/app/")).status_code == 200

    answer = events(await me.send("What is 1+1?", strategy="uids", uids="1"))
    assert "Miner 1 heard: What is 1+1?" in final_html(answer)

    await me.page("/app/keys/")
    posted = await me.post_form("/app/keys/", {"name": "while redis sleeps", "credits": "3"})
    assert posted.status_code == 302
    created = await me.page(posted.headers["location"])
    assert created.status_code == 200 and "it is shown this once" in created.text
    assert re.search(r'value="vep_[^"]+"', created.text)
    assert await run_db(lambda: ApiKey.objects.filter(name="while redis sleeps").exists())
