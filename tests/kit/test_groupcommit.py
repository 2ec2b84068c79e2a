"""Group commit: batches grow with load, items sharing a key never meet, each caller gets its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from kit.groupcommit import GroupCommit

pytestmark = pytest.mark.asyncio


class Store:
    def __init__(self, delay: float = 0.01) -> None:
        self.batches: list[list[str]] = []
        self.delay = delay

    async def __call__(self, batch: list[str]) -> list[str | BaseException]:
        self.batches.append(list(batch))
        await asyncio.sleep(self.delay)
        if "explode" in batch:
            raise RuntimeError("the database went away")
        return [ValueError(f"bad {x}") if x.startswith("bad") else x.upper() for x in batch]


async def test_batches_grow_under_load_and_each_caller_gets_its_own_answer():
    store = Store()
    writer = GroupCommit(store, max_batch=8)
    writer.start()
    items = [f"item{i}" for i in range(40)]
    answers = await asyncio.gather(*(writer.submit(x) for x in items))
    await writer.stop()
    assert answers == [x.upper() for x in items]
    assert max(len(b) for b in store.batches) == 8 and len(store.batches) < 40
    assert sorted(x for b in store.batches for x in b) == sorted(items)


async def test_items_sharing_a_key_wait_for_the_next_batch_in_order():
    store = Store()
    writer = GroupCommit(store, keys=lambda x: frozenset({x.split(":")[0]}), max_batch=64)
    writer.start()
    items = ["a:1", "b:1", "a:2", "c:1", "a:3"]
    await asyncio.gather(*(writer.submit(x) for x in items))
    await writer.stop()
    for batch in store.batches:
        heads = [x.split(":")[0] for x in batch]
        assert len(heads) == len(set(heads)), batch
    seen_a = [x for b in store.batches for x in b if x.startswith("a:")]
    assert seen_a == ["a:1", "a:2", "a:3"]  # one key's items keep their order


async def test_an_item_refused_alone_does_not_touch_the_others():
    writer = GroupCommit(Store(), max_batch=64)
    writer.start()
    results = await asyncio.gather(writer.submit("ok1"), writer.submit("bad2"), writer.submit("ok3"), return_exceptions=True)
    await writer.stop()
    assert results[0] == "OK1" and results[2] == "OK3"
    assert isinstance(results[1], ValueError) and "bad2" in str(results[1])


async def test_a_failed_batch_fails_its_callers_and_the_writer_goes_on():
    store = Store(delay=0.05)
    writer = GroupCommit(store, max_batch=64)
    writer.start()
    first = await asyncio.gather(writer.submit("x"), writer.submit("explode"), return_exceptions=True)
    later = await writer.submit("after")
    await writer.stop()
    assert any(isinstance(r, RuntimeError) for r in first)
    assert later == "AFTER"


async def test_without_writers_each_item_is_stored_alone():
    store = Store(delay=0)
    writer = GroupCommit(store)
    assert await writer.submit("solo") == "SOLO"
    with pytest.raises(ValueError):
        await writer.submit("bad")
    assert store.batches == [["solo"], ["bad"]]


async def test_stop_stores_what_is_queued():
    store = Store()
    writer = GroupCommit(store, max_batch=2)
    writer.start()
    pending = [asyncio.ensure_future(writer.submit(f"q{i}")) for i in range(7)]
    await asyncio.sleep(0)
    await writer.stop()
    assert all(q.answer.done() for q in writer._queue) and not writer._queue
    assert await asyncio.gather(*pending) == [f"Q{i}" for i in range(7)]
