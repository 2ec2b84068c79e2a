"""Submitting events, and reading the log: entries, checkpoints and proofs from stored nodes.

Every proof read is one query on ``ledger_nodes`` for the O(log n) complete subtrees it needs.
A proof may be asked for any tree size up to the current one (not only sizes that were checkpointed);
to check it offline a client needs that size's root, which the latest signed checkpoint provides.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.bulk import bulk_insert
from kit.times import utcnow

from . import integrity, merkle
from .checkpoint import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    parse_checkpoint,
    split_note,
)
from .entries import Entry, assert_no_personal_data
from .merkle import NodeId, ProofError
from .sequencer import Sequencer
from .store import checkpoints, pending
from .store import entries as entries_t
from .store import topics as topics_t
from .tree import fetch_nodes

MAX_TOPIC_CHARS = 200


@dataclass(frozen=True)
class Submitted:
    """What ``submit`` returns: the leaf hash identifies the event once sequenced (``find``)."""

    leaf_hash: bytes
    entry: bytes


@dataclass(frozen=True)
class LoggedEntry:
    index: int
    entry: bytes
    leaf_hash: bytes
    created_at: datetime


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


Item = Entry | tuple[Entry, Iterable[str]]


def _topics(values: Iterable[str]) -> str | None:
    """Topics as stored on the pending row: distinct, newline-separated (None when there are none)."""
    out: list[str] = []
    for t in values:
        if not isinstance(t, str) or not t or len(t) > MAX_TOPIC_CHARS or "\n" in t:
            raise ValueError(f"a topic is a non-empty line of at most {MAX_TOPIC_CHARS} characters, not {t!r}")
        if t not in out:
            out.append(t)
    return "\n".join(out) or None


async def submit(session: AsyncSession, entry: Entry, topics: Iterable[str] = ()) -> Submitted:
    """Queue ``entry`` in the caller's transaction; it is sequenced after that transaction commits.

    ``topics`` are index keys under which the entry can be found once sequenced (``indexes_for``);
    they are not part of the entry and are not hashed.
    """
    return (await submit_many(session, [(entry, topics)]))[0]


async def submit_many(session: AsyncSession, items: Iterable[Item]) -> list[Submitted]:
    """Queue several entries (each an ``Entry`` or an ``(Entry, topics)`` pair) in one statement."""
    out: list[Submitted] = []
    now = utcnow()
    rows: list[tuple[bytes, str | None, datetime]] = []
    for item in items:
        e, tops = item if isinstance(item, tuple) else (item, ())
        if not isinstance(e, Entry):
            raise TypeError("submit takes ledger.Entry objects")
        assert_no_personal_data(e)  # Entry checks on construction; a second look costs little
        data = e.to_bytes()
        rows.append((data, _topics(tops), now))
        out.append(Submitted(merkle.leaf_hash(data), data))
    await bulk_insert(session, pending, ("entry", "topics", "created_at"), rows, ordered=True)
    return out


# --- reads -------------------------------------------------------------------------------------------


async def _assemble(session: AsyncSession, ranges: Sequence[tuple[int, int]], size: int, what: str) -> list[bytes]:
    """Proof hashes for ``ranges``, in one query that also checks that the tree has ``size`` leaves."""
    last = (0, size - 1)
    got = await fetch_nodes(session, merkle.nodes_for(ranges) | {last})

    def get(node: NodeId) -> bytes:
        try:
            return got[node]
        except KeyError:
            raise ProofError(f"{what}: the log has fewer than {size} entries") from None

    get(last)
    return merkle.assemble(ranges, get)


async def inclusion_proof(session: AsyncSession, index: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of the first ``size`` entries."""
    ranges = merkle.inclusion_ranges(index, size)
    return await _assemble(session, ranges, size, f"inclusion of {index} in {size}")


async def consistency_proof(session: AsyncSession, first: int, second: int) -> list[bytes]:
    """RFC 9162 consistency proof between tree sizes ``first`` and ``second`` (empty if first is 0 or equal)."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if second == 0:
        return []
    ranges = merkle.consistency_ranges(first, second) if 0 < first < second else []
    return await _assemble(session, ranges, second, f"consistency {first}..{second}")


async def root_at(session: AsyncSession, size: int) -> bytes:
    """The root of the tree of the first ``size`` entries, from stored nodes."""
    if size == 0:
        return merkle.EMPTY_ROOT
    edge = [(idx << lv, (idx + 1) << lv) for lv, idx in merkle.Frontier.node_ids(size)]
    return merkle.fold(await _assemble(session, edge, size, f"root of {size}"))


async def entries(session: AsyncSession, start: int, end: int) -> list[LoggedEntry]:
    """Entries with ``start <= index < end``, in index order (the caller bounds ``end - start``)."""
    res = await session.execute(
        select(entries_t.c.idx, entries_t.c.entry, entries_t.c.leaf_hash, entries_t.c.created_at)
        .where(entries_t.c.idx >= start, entries_t.c.idx < end)
        .order_by(entries_t.c.idx)
    )
    return [LoggedEntry(i, bytes(e), bytes(h), t) for i, e, h, t in res]


async def entries_at(session: AsyncSession, indexes: Iterable[int]) -> list[LoggedEntry]:
    """The entries at ``indexes`` (those that exist), in index order."""
    wanted = sorted(set(indexes))
    if not wanted:
        return []
    res = await session.execute(
        select(entries_t.c.idx, entries_t.c.entry, entries_t.c.leaf_hash, entries_t.c.created_at)
        .where(entries_t.c.idx.in_(wanted))
        .order_by(entries_t.c.idx)
    )
    return [LoggedEntry(i, bytes(e), bytes(h), t) for i, e, h, t in res]


async def indexes_for(
    session: AsyncSession, topics: Iterable[str], *, start: int = 0, end: int | None = None, limit: int | None = None
) -> list[int]:
    """Indexes of the sequenced entries filed under any of ``topics``, ascending, within ``[start, end)``."""
    wanted = sorted(set(topics))
    if not wanted:
        return []
    query = select(topics_t.c.idx).distinct().where(topics_t.c.topic.in_(wanted), topics_t.c.idx >= start)
    if end is not None:
        query = query.where(topics_t.c.idx < end)
    query = query.order_by(topics_t.c.idx)
    if limit is not None:
        query = query.limit(limit)
    return [i for (i,) in await session.execute(query)]


async def topics_of(session: AsyncSession, indexes: Iterable[int]) -> dict[int, set[str]]:
    """The topics each of ``indexes`` was filed under."""
    wanted = sorted(set(indexes))
    out: dict[int, set[str]] = {i: set() for i in wanted}
    if wanted:
        res = await session.execute(select(topics_t.c.idx, topics_t.c.topic).where(topics_t.c.idx.in_(wanted)))
        for i, t in res:
            out[i].add(t)
    return out


async def find(session: AsyncSession, leaf_hash: bytes) -> list[int]:
    """Indexes of the entries with this leaf hash (normally one; empty while still pending)."""
    res = await session.execute(select(entries_t.c.idx).where(entries_t.c.leaf_hash == leaf_hash).order_by(entries_t.c.idx))
    return [i for (i,) in res]


def _checkpoint(row: Any) -> Checkpoint:
    text, _ = split_note(row.note)
    cp = parse_checkpoint(text)
    return Checkpoint(cp.origin, cp.size, cp.root, row.note, cp.extensions)


async def latest_checkpoint(session: AsyncSession) -> Checkpoint | None:
    """The newest signed checkpoint (its size is the current tree size), or None before the first batch."""
    row = (await session.execute(select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1))).first()
    return _checkpoint(row) if row else None


async def checkpoint_at(session: AsyncSession, size: int) -> Checkpoint | None:
    row = (await session.execute(select(checkpoints).where(checkpoints.c.size == size))).first()
    return _checkpoint(row) if row else None


async def tree_size(session: AsyncSession) -> int:
    cp = await latest_checkpoint(session)
    return cp.size if cp else 0


# --- bundles for the offline verifier (``ledger.verify.check_proof_file``) ---------------------------


async def inclusion_bundle(session: AsyncSession, index: int, verifier_key: str) -> dict[str, Any]:
    """Everything needed to check offline that entry ``index`` is in the log's latest signed checkpoint."""
    cp = await latest_checkpoint(session)
    if cp is None or index >= cp.size:
        raise ProofError(f"entry {index} is not covered by a signed checkpoint yet")
    (e,) = await entries(session, index, index + 1)
    return {
        "checkpoint": cp.note,
        "verifierKey": verifier_key,
        "entry": e.entry.decode("utf-8"),
        "leafHash": _b64(e.leaf_hash),
        "index": index,
        "size": cp.size,
        "proof": [_b64(h) for h in await inclusion_proof(session, index, cp.size)],
    }


async def consistency_bundle(session: AsyncSession, first: int, verifier_key: str, second: int | None = None) -> dict[str, Any]:
    """Proof that the tree of ``first`` entries is a prefix of the latest (or the ``second``) checkpoint.

    ``second`` must be a checkpointed size, so that both roots come with a signature (``firstCheckpoint``
    is included when ``first`` was checkpointed too).
    """
    new = await latest_checkpoint(session) if second is None else await checkpoint_at(session, second)
    if new is None:
        raise ProofError("no signed checkpoint of that size")
    if first > new.size:
        raise ProofError(f"size {first} is beyond the checkpoint of size {new.size}")
    old = await checkpoint_at(session, first)
    out: dict[str, Any] = {
        "checkpoint": new.note,
        "verifierKey": verifier_key,
        "first": first,
        "second": new.size,
        "firstRoot": _b64(await root_at(session, first)),
        "secondRoot": _b64(new.root),
        "proof": [_b64(h) for h in await consistency_proof(session, first, new.size)],
    }
    if old is not None:
        out["firstCheckpoint"] = old.note
    return out


class Ledger:
    """The ledger as the gateway uses it: one signer key, one origin.

    ``submit`` runs in the caller's session and transaction; reads take any session; ``sequencer()``
    gives the background task that turns pending events into signed log entries.
    """

    def __init__(self, signer: NoteSigner, origin: str | None = None) -> None:
        self.signer = signer
        self.origin = origin or signer.name

    @property
    def verifier_key(self) -> str:
        return self.signer.verifier_key()

    @property
    def verifier(self) -> NoteVerifier:
        return self.signer.verifier

    submit = staticmethod(submit)
    submit_many = staticmethod(submit_many)
    inclusion_proof = staticmethod(inclusion_proof)
    consistency_proof = staticmethod(consistency_proof)
    entries = staticmethod(entries)
    entries_at = staticmethod(entries_at)
    indexes_for = staticmethod(indexes_for)
    topics_of = staticmethod(topics_of)
    find = staticmethod(find)
    latest_checkpoint = staticmethod(latest_checkpoint)
    checkpoint_at = staticmethod(checkpoint_at)
    tree_size = staticmethod(tree_size)
    root_at = staticmethod(root_at)

    async def inclusion_bundle(self, session: AsyncSession, index: int) -> dict[str, Any]:
        return await inclusion_bundle(session, index, self.verifier_key)

    async def consistency_bundle(self, session: AsyncSession, first: int, second: int | None = None) -> dict[str, Any]:
        return await consistency_bundle(session, first, self.verifier_key, second)

    def sequencer(self) -> Sequencer:
        return Sequencer(self.signer, self.origin)

    async def verify_log(self, session: AsyncSession) -> integrity.VerifyReport:
        return await integrity.verify_log(session, self.verifier, origin=self.origin)
