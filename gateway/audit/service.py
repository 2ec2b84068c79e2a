"""The ledger as the running window holds it: the signing key, and the sequencer in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledger import Ledger, load_or_create_key

from ..config import Settings

log = logging.getLogger("swx.audit")


class AuditLog:
    def __init__(self, settings: Settings) -> None:
        self.ledger = Ledger(load_or_create_key(settings.ledger_key_path, settings.ledger_origin), settings.ledger_origin)
        self.sequencer = self.ledger.sequencer()
        self.interval = settings.ledger_interval
        self.max_batch = settings.ledger_batch
        self.linger = settings.ledger_linger
        self._task: asyncio.Task[None] | None = None

    async def start(self, sessions: async_sessionmaker[AsyncSession], guard: contextlib.AbstractAsyncContextManager[Any]) -> None:
        """Sequence what an earlier run left pending (and sign the first checkpoint), then keep sequencing."""
        self._sessions, self._guard = sessions, guard
        await self.sequencer.integrate(sessions, self.max_batch, guard=guard)
        self._task = asyncio.create_task(
            self.sequencer.run_forever(
                sessions, interval=self.interval, max_batch=self.max_batch, guard=guard, linger=self.linger
            ),
            name="swx-ledger-sequencer",
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            try:  # leave nothing pending that a clean stop could have sequenced
                await self.sequencer.integrate(self._sessions, self.max_batch, guard=self._guard)
            except Exception:
                log.exception("ledger: final integration failed; the next start will sequence what is pending")

    def committed(self) -> None:
        """Called after a transaction that queued events commits: sequence soon rather than at the next tick."""
        self.sequencer.notify()

    async def sync(self) -> int:
        """Sequence everything pending now (tests, tools)."""
        return await self.sequencer.integrate(self._sessions, self.max_batch, guard=self._guard)
