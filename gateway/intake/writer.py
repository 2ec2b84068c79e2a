"""Group commit of filings: those validated at about the same time are stored in one transaction.

Each filing costs a dozen statements and a WAL flush when it commits alone; stored together, a batch
costs about the same number of statements as one filing (one multi-row statement per table) and a
single flush. Nobody waits for a batch to fill: a writer takes whatever is queued the moment it is
free, so under light load a batch is one filing and under heavy load batches grow by themselves.
Every filing is still answered only after the commit that stored it.

A batch never holds two filings with the same guid or document key (a later one waits for the
next batch), so each filing of a batch is judged exactly as it would be alone.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..auth import Principal
from ..metrics import INTAKE_BATCH
from .answers import Filing, FilingResult
from .validate import Checked

# Judges and stores a batch of checked filings in one transaction (``IntakeService.store``).
Store = Callable[[list[Filing]], Awaitable[list[FilingResult]]]

log = logging.getLogger("swx.intake")


@dataclass(slots=True)
class _Queued:
    checked: Checked
    principal: Principal
    answer: asyncio.Future[FilingResult]
    keys: frozenset[str] = field(default_factory=frozenset)


def _keys(checked: Checked) -> frozenset[str]:
    keys = {f"guid:{checked.guid}"} if checked.guid else set()
    if checked.mtype is not None:
        keys.update(f"{checked.mtype.kind}:{d.key_text}" for d in checked.docs)
    return frozenset(keys)


class FilingWriter:
    def __init__(self, store: Store, *, writers: int = 1, max_batch: int = 64) -> None:
        self.store = store
        self.writers = writers
        self.max_batch = max_batch
        self._queue: collections.deque[_Queued] = collections.deque()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closing = False

    async def submit(self, checked: Checked, principal: Principal) -> FilingResult:
        if self._closing or not self._tasks:
            return (await self.store([(checked, principal)]))[0]
        item = _Queued(checked, principal, asyncio.get_running_loop().create_future(), _keys(checked))
        self._queue.append(item)
        self._ready.set()
        # shield: a caller that goes away must not cancel the others' batch; its filing is still stored
        return await asyncio.shield(item.answer)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"swx-intake-writer-{i}") for i in range(self.writers)]

    async def stop(self) -> None:
        """Store what is queued, then stop."""
        self._closing = True
        self._ready.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _take(self) -> list[_Queued]:
        batch: list[_Queued] = []
        held: list[_Queued] = []
        taken: set[str] = set()
        while self._queue and len(batch) < self.max_batch:
            item = self._queue.popleft()
            if item.keys & taken:
                held.append(item)  # same guid or document as one in this batch: the next batch
                continue
            taken |= item.keys
            batch.append(item)
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
            INTAKE_BATCH.observe(len(batch))
            try:
                outcomes = await self.store([(q.checked, q.principal) for q in batch])
            except Exception as exc:  # every waiting request gets the failure, and the writer goes on
                log.exception("storing a batch of %d filings failed", len(batch))
                for q in batch:
                    if not q.answer.done():
                        q.answer.set_exception(exc)
                continue
            for q, outcome in zip(batch, outcomes):
                if not q.answer.done():
                    q.answer.set_result(outcome)
