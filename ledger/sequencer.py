"""The sequencer: moves pending events into the log in batches and signs a checkpoint per batch.

Submitters never touch the tree, so they never wait on a ledger-wide lock: they insert a pending row
in their own transaction. One batch is one transaction of the sequencer:

1. take the sequencer lock -- ``pg_advisory_xact_lock`` on PostgreSQL, so concurrent integrators (several
   workers or replicas) queue up; on SQLite the first statement is a write, which takes the database's
   write lock at once (run one integrator per SQLite file; a second one is still safe, only slower);
2. delete up to ``max_batch`` pending rows in ``id`` order, returning them;
3. read the latest checkpoint and the O(log n) frontier nodes of its tree, checking that they still
   hash to its root (the sequencer never builds on a damaged right edge);
4. append the leaves to the frontier, which yields exactly the new complete subtrees -- the tree is
   never recomputed -- and insert entries and nodes with batched multi-row inserts;
5. sign and insert the checkpoint of the new size.

A crash anywhere rolls the whole batch back, pending rows included.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kit.bulk import bulk_insert
from kit.times import utcnow
from kit.waits import wait_event

from . import merkle
from .checkpoint import NoteSigner, sign_checkpoint
from .store import checkpoints, entries, nodes, pending, topics
from .tree import fetch_nodes

log = logging.getLogger("swx.ledger")

# Key of the PostgreSQL advisory lock that serializes integrators (a signed 64-bit integer).
ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"swx.ledger.sequencer").digest()[:8], "big", signed=True)
INSERT_CHUNK = 20000  # rows per multi-row insert statement


class LedgerCorruptedError(RuntimeError):
    """The stored right edge of the tree does not match the latest checkpoint: refuse to append."""


class Sequencer:
    def __init__(self, signer: NoteSigner, origin: str | None = None, *, lock_key: int = ADVISORY_LOCK_KEY) -> None:
        self.signer = signer
        self.origin = origin or signer.name
        self.lock_key = lock_key
        self._wake: asyncio.Event | None = None

    async def integrate_batch(self, session: AsyncSession, max_batch: int = 1000) -> int:
        """Sequence up to ``max_batch`` pending entries in the session's current transaction.

        Returns how many were sequenced. The caller commits. The first call on an empty ledger also
        signs the checkpoint of the empty tree.
        """
        if session.bind.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.lock_key})
        # On SQLite this DELETE is the transaction's first statement, so its write lock comes first.
        oldest = select(pending.c.id).order_by(pending.c.id).limit(max_batch).scalar_subquery()
        taken = (
            await session.execute(delete(pending).where(pending.c.id.in_(oldest)).returning(pending.c.id, pending.c.entry, pending.c.topics))
        ).all()
        taken.sort(key=lambda r: r[0])
        head = (
            await session.execute(select(checkpoints.c.size, checkpoints.c.root).order_by(checkpoints.c.size.desc()).limit(1))
        ).first()
        if head is not None and not taken:
            return 0
        size, root = (head[0], bytes(head[1])) if head else (0, merkle.EMPTY_ROOT)
        if head is None and size == 0 and await session.scalar(select(entries.c.idx).limit(1)) is not None:
            raise LedgerCorruptedError("ledger_entries has rows but ledger_checkpoints is empty")
        try:
            frontier = merkle.Frontier.from_nodes(size, await fetch_nodes(session, merkle.Frontier.node_ids(size)))
        except KeyError as exc:
            raise LedgerCorruptedError(f"right-edge node {exc} of the tree of size {size} is missing") from None
        if frontier.root() != root:
            raise LedgerCorruptedError(f"stored right edge does not hash to the checkpointed root of size {size}")
        now = utcnow()
        entry_rows: list[tuple[Any, ...]] = []
        node_rows: list[tuple[int, int, bytes]] = []
        topic_rows: list[tuple[str, int]] = []
        for _, data, tops in taken:
            data = bytes(data)
            leaf = merkle.leaf_hash(data)
            if tops:
                topic_rows.extend((t, frontier.size) for t in tops.split("\n"))
            entry_rows.append((frontier.size, data, leaf, now))
            node_rows.extend(frontier.append(leaf))
        for i in range(0, len(entry_rows), INSERT_CHUNK):
            await bulk_insert(session, entries, ("idx", "entry", "leaf_hash", "created_at"), entry_rows[i : i + INSERT_CHUNK])
        for i in range(0, len(node_rows), INSERT_CHUNK):
            await bulk_insert(session, nodes, ("level", "idx", "hash"), node_rows[i : i + INSERT_CHUNK])
        for i in range(0, len(topic_rows), INSERT_CHUNK):
            await bulk_insert(session, topics, ("topic", "idx"), topic_rows[i : i + INSERT_CHUNK])
        new_root = frontier.root()
        note = sign_checkpoint(self.signer, self.origin, frontier.size, new_root)
        await session.execute(insert(checkpoints).values(size=frontier.size, root=new_root, note=note, created_at=now))
        return len(taken)

    async def integrate(
        self,
        session_factory: Callable[[], AsyncSession],
        max_batch: int = 1000,
        max_batches: int | None = None,
        guard: contextlib.AbstractAsyncContextManager[Any] | None = None,
    ) -> int:
        """Sequence pending entries, one transaction and one checkpoint per batch of up to ``max_batch``,
        until none are left (or ``max_batches`` ran). Returns how many entries were sequenced.

        ``guard`` (e.g. an ``asyncio.Lock``) is held around each batch: on SQLite, the application's
        own writer lock, so that the sequencer queues with the other writers instead of busy-waiting."""
        total = batches = 0
        guard = guard if guard is not None else contextlib.nullcontext()
        while max_batches is None or batches < max_batches:
            async with guard, session_factory() as session, session.begin():
                n = await self.integrate_batch(session, max_batch)
            total += n
            batches += 1
            if n < max_batch:
                break
        return total

    def notify(self) -> None:
        """Wake ``run_forever`` now (e.g. after committing a submit) instead of at the next interval."""
        if self._wake is not None:
            self._wake.set()

    async def run_forever(
        self,
        session_factory: Callable[[], AsyncSession],
        interval: float = 1.0,
        max_batch: int = 1000,
        guard: contextlib.AbstractAsyncContextManager[Any] | None = None,
        linger: float = 0.0,
    ) -> None:
        """Integrate every ``interval`` seconds (or when notified) until cancelled; errors are logged
        and retried with backoff. Start it as a task in the app lifespan; cancel it on shutdown.

        ``linger``: after being woken, wait this long for more events, so that a busy window signs one
        checkpoint per batch of events rather than one per event."""
        self._wake = asyncio.Event()
        delay = interval
        while True:
            try:
                n = await self.integrate(session_factory, max_batch, guard=guard)
                if n:
                    log.debug("ledger: sequenced %d entries", n)
                delay = interval
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ledger: integration failed; retrying")
                delay = min(max(delay * 2, interval), 60.0)
            await wait_event(self._wake, delay)
            if linger and self._wake.is_set():
                await asyncio.sleep(linger)
            self._wake.clear()
