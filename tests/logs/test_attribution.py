"""A request keeps the name and prefix of the key that made it, so deleting
the key (or a restart of `make run`) leaves every request attributed."""

from __future__ import annotations

import pytest

from keys.services import do_create_key, do_delete_key
from logs.models import Request

pytestmark = pytest.mark.django_db(transaction=True)


def test_requests_of_a_deleted_key_still_say_which_key(live_server_url, network, console):
    import httpx

    new = do_create_key(name="acme prod", credits=None)
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    reply = httpx.post(
        live_server_url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {new.raw}"}, timeout=30
    )
    assert reply.status_code == 200
    do_delete_key(new.key)

    logged = Request.objects.get()
    assert logged.key_id is None
    assert (logged.key_name, logged.key_prefix) == ("acme prod", new.key.prefix)
    page = console.get("/admin/logs/request/").content.decode()
    assert f"acme prod ({new.key.prefix}…), deleted" in page
    export = console.get("/admin/logs/request/export/")
    assert new.key.prefix in b"".join(export.streaming_content).decode()
