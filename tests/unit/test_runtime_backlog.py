"""runtime.Backlog: the bound on articles held between their request and their cleaning."""

from __future__ import annotations

import asyncio

from monitor.runtime import Backlog


async def test_a_place_is_taken_only_while_fewer_than_the_limit_are() -> None:
    backlog = Backlog(2)
    first, second, third = backlog.place(), backlog.place(), backlog.place()
    await first.take()
    await second.take()
    waiting = asyncio.create_task(third.take())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not waiting.done()  # two are held: the third waits
    await first.give_back()
    await asyncio.wait_for(waiting, 5)
    assert repr(backlog) == "<Backlog taken=2 limit=2 most=2>"


async def test_a_place_taken_twice_or_given_back_untaken_counts_once() -> None:
    backlog = Backlog(1)
    place = backlog.place()
    await place.take()
    await place.take()  # a retried request asks again: the same place
    await place.give_back()
    await place.give_back()
    await backlog.place().give_back()  # a fetch that failed before its request took none
    assert backlog.taken == 0
