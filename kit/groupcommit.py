"""Group commit: work that arrives at about the same time is stored in one transaction.

A write alone costs its statements and a WAL flush; written together, a batch costs about the same
number of statements as one item (one multi-row statement per table) and a single flush. Nobody
waits for a batch to fill: a writer takes whatever is queued the moment it is free, so under light
load a batch is one item and under heavy load batches grow by themselves. Every caller is answered
only after the commit that stored its item (or with the error of its own item).

Items sharing a key (a guid, a document) never meet in one batch: the later one waits for the next,
so each item of a batch can be judged against what was stored before the batch began.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Stores a batch in one transaction; one outcome per item, in order: a result, or the exception that
# item (alone) is answered with.
Store = Callable[[list[T]], Awaitable[Sequence["R | BaseException"]]]

log = logging.getLogger("swx.groupcommit")


def _no_keys(_item: object) -> frozenset[str]:
    return frozenset()


@dataclass(slots=True)
class _Queued(Generic[T, R]):
    item: T
    answer: asyncio.Future[R]
    keys: frozenset[str]


class GroupCommit(Generic[T, R]):
    """Queue of items, ``writers`` tasks storing them in batches of at most ``max_batch``."""

    def __init__(
        self, store: Store, *, keys: Callable[[T], frozenset[str]] = _no_keys, writers: int = 1, max_batch: int = 64,
        name: str = "batch", observe: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.writers = writers
        self.max_batch = max_batch
        self.name = name
        self.observe = observe
        self._queue: collections.deque[_Queued[T, R]] = collections.deque()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closing = False

    async def submit(self, item: T) -> R:
        if self._closing or not self._tasks:
            return _unwrap((await self.store([item]))[0])
        queued = _Queued(item, asyncio.get_running_loop().create_future(), self.keys(item))
        self._queue.append(queued)
        self._ready.set()
        # shield: a caller that goes away must not cancel the others' batch; its item is still stored
        return await asyncio.shield(queued.answer)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"swx-{self.name}-writer-{i}") for i in range(self.writers)]

    async def stop(self) -> None:
        """Store what is queued, then stop."""
        self._closing = True
        self._ready.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _take(self) -> list[_Queued[T, R]]:
        batch: list[_Queued[T, R]] = []
        held: list[_Queued[T, R]] = []
        taken: set[str] = set()
        while self._queue and len(batch) < self.max_batch:
            queued = self._queue.popleft()
            if queued.keys & taken:
                held.append(queued)  # shares a key with one in this batch: the next batch
                continue
            taken |= queued.keys
            batch.append(queued)
        self._queue.extendleft(reversed(held))
        return batch

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            batch = self._take()
            if self.observe is not None:
                self.observe(len(batch))
            try:
                outcomes = await self.store([q.item for q in batch])
            except Exception as exc:  # every waiting caller gets the failure, and the writer goes on
                log.exception("storing a %s of %d failed", self.name, len(batch))
                for q in batch:
                    if not q.answer.done():
                        q.answer.set_exception(exc)
                continue
            for q, outcome in zip(batch, outcomes):
                if q.answer.done():
                    continue
                if isinstance(outcome, BaseException):
                    q.answer.set_exception(outcome)
                else:
                    q.answer.set_result(outcome)


def _unwrap(outcome: R | BaseException) -> R:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
