"""endpoint.core.loopbound.PerLoop: one object per key and running event loop,
made once, forgotten with its loop."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from endpoint.core.loopbound import PerLoop


class Client:
    """Stands for a loop-bound client (it must be weakly referenceable to see it go)."""

    made = 0

    def __init__(self, key: str) -> None:
        self.key = key
        Client.made += 1


def test_each_key_gets_one_object_per_loop_made_once():
    clients: PerLoop[str, Client] = PerLoop()

    async def use() -> tuple[Client, Client, Client]:
        return clients.get("a", Client), clients.get("a", Client), clients.get("b", Client)

    before = Client.made
    first, again, other = asyncio.run(use())
    assert first is again and first.key == "a"
    assert other is not first and other.key == "b"
    assert Client.made == before + 2


def test_another_loop_gets_its_own_object():
    clients: PerLoop[str, Client] = PerLoop()

    async def use() -> Client:
        return clients.get("a", Client)

    assert asyncio.run(use()) is not asyncio.run(use())


def test_pop_hands_back_this_loops_objects_and_forgets_them():
    clients: PerLoop[str, Client] = PerLoop()

    async def use() -> None:
        a, b = clients.get("a", Client), clients.get("b", Client)
        assert clients.pop() == [a, b]
        assert clients.pop() == []
        assert clients.peek("a") is None
        assert clients.get("a", Client) is not a  # made anew

    asyncio.run(use())


def test_peek_never_makes_and_set_replaces():
    clients: PerLoop[str, Client] = PerLoop()

    async def use() -> None:
        assert clients.peek("a") is None
        replacement = Client("a")
        assert clients.set("a", replacement) is replacement
        assert clients.peek("a") is replacement
        assert clients.get("a", Client) is replacement

    asyncio.run(use())


def test_a_finished_loop_does_not_keep_its_objects_alive():
    clients: PerLoop[str, Client] = PerLoop()
    loop = asyncio.new_event_loop()

    async def use() -> Client:
        return clients.get("a", Client)

    made = weakref.ref(loop.run_until_complete(use()))
    loop.close()
    del loop
    gc.collect()
    assert made() is None


def test_outside_a_running_loop_it_refuses():
    clients: PerLoop[str, Client] = PerLoop()
    with pytest.raises(RuntimeError):
        clients.get("a", Client)
    with pytest.raises(RuntimeError):
        clients.pop()
