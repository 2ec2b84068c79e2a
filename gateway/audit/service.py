"""The ledger as the running window holds it and publishes it.

``AuditLog`` owns the signing key and runs the sequencer in the background; the functions below
answer the ledger endpoints — checkpoint, entries, proofs — each caller seeing the entries it may.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ledger import Checkpoint, Ledger, ProofError, load_or_create_key, parse_canonical

from ..auth import Principal
from ..config import Settings
from ..db import Database, Effect
from .errors import EntryNotFound, LedgerQueryInvalid, NoCheckpoint
from .events import party_topic
from .trace import b64

MAX_PAGE = 1000

log = logging.getLogger("swx.audit")


class AuditLog:
    def __init__(self, settings: Settings) -> None:
        self.ledger = Ledger(load_or_create_key(settings.ledger_key_path, settings.ledger_origin), settings.ledger_origin)
        self.sequencer = self.ledger.sequencer()
        self.interval = settings.ledger_interval
        self.max_batch = settings.ledger_batch
        self.linger = settings.ledger_linger
        self._task: asyncio.Task[None] | None = None

    async def start(self, db: Database) -> None:
        """Sequence what an earlier run left pending (and sign the first checkpoint), then keep sequencing,
        woken by every commit that queued events. On SQLite the sequencer queues behind the writer lock."""
        sessions, guard = db.write_sessions, db.write_lock
        self._sessions, self._guard = sessions, guard
        db.on_commit(Effect.LEDGER, self.committed)
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


# ---- publishing -----------------------------------------------------------------------------------------


def visible_topics(caller: Principal) -> set[str] | None:
    """The topics a caller may read entries under; None means every entry."""
    if caller.is_operator or caller.is_regulator:
        return None
    return {party_topic(c) for c in (caller.codes or (caller.code,)) if c}


async def checkpoint(session: AsyncSession, ledger: Ledger) -> Checkpoint:
    cp = await ledger.latest_checkpoint(session)
    if cp is None:  # the sequencer signs the empty tree at start, so only a broken start gets here
        raise NoCheckpoint("the ledger has no signed checkpoint yet; try again shortly")
    return cp


def _item(index: int, data: bytes, leaf: bytes) -> dict[str, Any]:
    return {"index": index, "entry": parse_canonical(data), "entryText": data.decode("utf-8"), "leafHash": b64(leaf)}


async def entries(session: AsyncSession, ledger: Ledger, caller: Principal, start: int, end: int | None) -> dict:
    """Entries with ``start <= index < end`` covered by the latest checkpoint, those the caller may read."""
    size = (await checkpoint(session, ledger)).size
    end = min(start + MAX_PAGE if end is None else end, size)
    if end is not None and end < start:
        end = start
    if end - start > MAX_PAGE:
        raise LedgerQueryInvalid(f"at most {MAX_PAGE} entries per request: end must be at most start + {MAX_PAGE}", field="end")
    visible = visible_topics(caller)
    if visible is None:
        rows = await ledger.entries(session, start, end)
    else:
        rows = await ledger.entries_at(session, await ledger.indexes_for(session, visible, start=start, end=end))
    return {"treeSize": size, "start": start, "end": end, "entries": [_item(r.index, r.entry, r.leaf_hash) for r in rows]}


async def inclusion(session: AsyncSession, ledger: Ledger, caller: Principal, index: int | None, leaf_hash: str | None,
                    size: int | None) -> dict:
    """The audit path of one entry (by index or leaf hash) to the root of the tree of ``size`` entries."""
    cp = await checkpoint(session, ledger)
    if index is None:
        if leaf_hash is None:
            raise LedgerQueryInvalid("give the entry's index, or its leaf hash as hash=", field="index")
        try:
            leaf = base64.b64decode(leaf_hash, validate=True)
        except (binascii.Error, ValueError):
            raise LedgerQueryInvalid("hash must be a standard base64 SHA-256 leaf hash", field="hash") from None
        found = [i for i in await ledger.find(session, leaf) if i < cp.size]
        if not found:
            raise EntryNotFound("no sequenced entry has that leaf hash (entries are sequenced within seconds)")
        index = found[0]
    size = size or cp.size
    if size > cp.size:
        raise LedgerQueryInvalid(f"size {size} is beyond the latest checkpoint ({cp.size} entries)", field="size")
    if index >= size:
        raise LedgerQueryInvalid(f"index {index} is not below size {size}", field="index")
    proof = await ledger.inclusion_proof(session, index, size)
    (row,) = await ledger.entries_at(session, [index])
    out: dict[str, Any] = {
        "index": index, "size": size, "leafHash": b64(row.leaf_hash), "proof": [b64(h) for h in proof],
        "rootHash": b64(await ledger.root_at(session, size)), "verifierKey": ledger.verifier_key,
    }
    signed = cp if size == cp.size else await ledger.checkpoint_at(session, size)
    if signed is not None:
        out["checkpoint"] = signed.note
    visible = visible_topics(caller)
    if visible is None or (await ledger.topics_of(session, [index]))[index] & visible:
        out["entry"] = row.entry.decode("utf-8")
    return out


async def consistency(session: AsyncSession, ledger: Ledger, first: int, second: int | None) -> dict:
    """Proof that the tree of ``first`` entries is a prefix of the tree of ``second``."""
    cp = await checkpoint(session, ledger)
    second = cp.size if second is None else second
    if second > cp.size:
        raise LedgerQueryInvalid(f"second ({second}) is beyond the latest checkpoint ({cp.size} entries)", field="second")
    if first > second:
        raise LedgerQueryInvalid(f"first ({first}) must not exceed second ({second})", field="first")
    try:
        proof = await ledger.consistency_proof(session, first, second)
    except ProofError as exc:
        raise LedgerQueryInvalid(str(exc), field="first") from None
    out: dict[str, Any] = {
        "first": first, "second": second, "proof": [b64(h) for h in proof],
        "firstRoot": b64(await ledger.root_at(session, first)), "secondRoot": b64(await ledger.root_at(session, second)),
        "verifierKey": ledger.verifier_key,
    }
    new = cp if second == cp.size else await ledger.checkpoint_at(session, second)
    if new is not None:
        out["checkpoint"] = new.note
    old = await ledger.checkpoint_at(session, first)
    if old is not None:
        out["firstCheckpoint"] = old.note
    return out
