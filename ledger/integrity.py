"""Full verification of the stored log: every entry, every node, every checkpoint.

``verify_log`` reads the log in aligned blocks of ``2**k`` entries (bounded memory), recomputes each
leaf from the stored bytes, rebuilds every complete subtree of the block level by level, and compares:

* the recomputed leaf with ``ledger_entries.leaf_hash``        -> a changed byte in an entry;
* the index sequence                                           -> a deleted row (a gap);
* each completed subtree with its ``ledger_nodes`` row, level 0 (the tree's copy of the leaf hashes)
  first                                                        -> moved, swapped or inserted rows;
* each checkpoint's signature, origin, size and root with the rebuilt tree of that size
                                                               -> forged or altered checkpoints;
* entries and nodes beyond the latest checkpoint               -> rows appended behind the sequencer.

A block is compared as a whole (lists and concatenations, not row by row), and the next block is read
while this one is hashed. A block where anything differs is verified again entry by entry, as a
frontier would append them, so that the failure named is the first one: ``failed_index`` is the
lowest index at which the stored log is inconsistent. If rows *and* nodes were rewritten
consistently, only a signed checkpoint can tell: the failure then names the first checkpoint that
does not match (``failed_checkpoint``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import merkle
from .checkpoint import NoteError, NoteVerifier, open_note, parse_checkpoint
from .store import checkpoints, entries, nodes

_sha256 = hashlib.sha256
_digest = type(_sha256()).digest
_SLICE = 1024  # hashes between two yields to the event loop, so that the next block's rows keep arriving


@dataclass
class VerifyReport:
    ok: bool = True
    size: int = 0  # entries verified (the latest checkpoint's size when ok)
    root: bytes | None = None  # root recomputed from the entries
    checkpoints: int = 0  # checkpoints verified
    nodes: int = 0  # stored nodes compared
    failed_index: int | None = None
    failed_checkpoint: int | None = None  # size of the failing checkpoint
    failed_node: tuple[int, int] | None = None  # (level, index)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def fail(self, error: str, index: int | None = None, checkpoint: int | None = None, node: tuple[int, int] | None = None) -> VerifyReport:
        self.ok, self.error = False, error
        self.failed_index, self.failed_checkpoint, self.failed_node = index, checkpoint, node
        return self

    def __str__(self) -> str:
        if self.ok:
            root = self.root.hex() if self.root else "-"
            return f"ledger OK: {self.size} entries, {self.nodes} nodes, {self.checkpoints} checkpoints; root {root}"
        return f"ledger FAILED: {self.error}"


def _node_ranges(start: int, end: int, max_level: int) -> list[tuple[int, int, int]]:
    """(level, first, last) of the complete subtrees completed by appending leaves [start, end)."""
    out = []
    for level in range(max_level + 1):
        lo = -(-(start + 1) // (1 << level)) - 1  # ceil((start + 1) / 2**level) - 1
        hi = (end >> level) - 1
        if lo <= hi:
            out.append((level, lo, hi))
    return out


# --- reading a block --------------------------------------------------------------------------------

Hashes = bytes | list[bytes] | None  # 32-byte hashes concatenated, or a list; None: unusable (a length is off)
Indexes = bytes | list[int]  # 8-byte big-endian integers concatenated, or a list


@dataclass
class _Block:
    """Rows of the block [start, end) as the database returned them (possibly out of order)."""

    idxs: Indexes
    data: list[Any]  # entry bytes, already behind the leaf prefix 0x00 when ``prefixed``
    leaves: Hashes | list[Any]
    levels: dict[int, tuple[Indexes, Hashes]]  # level -> (node indexes, their hashes in that order)
    cps: list[tuple[int, bytes, str]]  # checkpoints with start < size <= end, by size
    prefixed: bool = False


_GET = [itemgetter(i) for i in range(3)]


def _columns(rows: Sequence[Sequence[Any]], n: int) -> list[list[Any]]:
    return [list(map(get, rows)) for get in _GET[:n]]


def _packed(first: int, count: int) -> bytes:
    return struct.pack(f">{count}q", *range(first, first + count))


class _SqlReader:
    """Any driver, through SQLAlchemy: one ordered query per node level."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _all(self, stmt: Any) -> list[Any]:
        return (await self.session.execute(stmt)).all()

    async def read(self, start: int, end: int, ranges: list[tuple[int, int, int]]) -> _Block:
        e, n, c = entries.c, nodes.c, checkpoints.c
        idxs, data, leaves = _columns(await self._all(select(e.idx, e.entry, e.leaf_hash).where(e.idx >= start, e.idx < end).order_by(e.idx)), 3)
        levels: dict[int, tuple[Indexes, Hashes]] = {}
        for lv, lo, hi in ranges:
            ids, hs = _columns(await self._all(select(n.idx, n.hash).where(n.level == lv, n.idx.between(lo, hi)).order_by(n.idx)), 2)
            levels[lv] = (ids, hs)
        cps = await self._all(select(c.size, c.root, c.note).where(c.size > start, c.size <= end).order_by(c.size))
        return _Block(idxs, data, leaves, levels, [(s, bytes(r), t) for s, r, t in cps])


class _SqliteReader(_SqlReader):
    """aiosqlite's own connection: plain tuples instead of SQLAlchemy rows, read in aiosqlite's thread.
    (Aggregating columns into hex strings in SQL was slower.)"""

    def __init__(self, session: AsyncSession, conn: Any, quote: Callable[[Any], str]) -> None:
        super().__init__(session)
        self.conn = conn
        E, N, C = quote(entries), quote(nodes), quote(checkpoints)
        self.q_entries = f"SELECT idx, entry, leaf_hash FROM {E} WHERE idx >= ? AND idx < ? ORDER BY idx"
        self.q_nodes = f"SELECT idx, hash FROM {N} WHERE level = ? AND idx BETWEEN ? AND ? ORDER BY idx"
        self.q_cps = f"SELECT size, root, note FROM {C} WHERE size > ? AND size <= ? ORDER BY size"

    async def read(self, start: int, end: int, ranges: list[tuple[int, int, int]]) -> _Block:
        fetch = self.conn.execute_fetchall
        idxs, data, leaves = _columns(await fetch(self.q_entries, (start, end)), 3)
        levels: dict[int, tuple[Indexes, Hashes]] = {}
        for lv, lo, hi in ranges:
            ids, hs = _columns(await fetch(self.q_nodes, (lv, lo, hi)), 2)
            levels[lv] = (ids, hs)
        cps = await fetch(self.q_cps, (start, end))
        return _Block(idxs, data, leaves, levels, [(s, bytes(r), t) for s, r, t in cps])


class _AsyncpgReader:
    """asyncpg's own connection. Entries come as plain rows (cheapest for the server); the nodes of all
    levels in one bitmap scan, aggregated per level into a concatenation of hashes plus the indexes in
    the same order (the client checks the order: aggregate input order is not guaranteed)."""

    def __init__(self, conn: Any, quote: Callable[[Any], str], max_level: int) -> None:
        self.conn = conn
        self.max_level = max_level
        E, N, C = quote(entries), quote(nodes), quote(checkpoints)
        # The leaf prefix is added here, so that hashing needs no Python-level loop (bytea || is exact).
        self.q_entries = f"SELECT idx, decode('00', 'hex') || entry, leaf_hash FROM {E} WHERE idx >= $1 AND idx < $2"
        arms = " OR ".join(f"(level = {lv} AND idx BETWEEN ${2 * lv + 1} AND ${2 * lv + 2})" for lv in range(max_level + 1))
        self.q_nodes = (
            "SELECT level, string_agg(int8send(idx), ''::bytea), string_agg(hash, ''::bytea),"
            f" bool_and(octet_length(hash) = {merkle.HASH_SIZE})"
            f" FROM {N} WHERE {arms} GROUP BY level"
        )
        self.q_cps = f"SELECT size, root, note FROM {C} WHERE size > $1 AND size <= $2 ORDER BY size"

    async def read(self, start: int, end: int, ranges: list[tuple[int, int, int]]) -> _Block:
        conn = self.conn
        idxs, data, leaves = _columns(await conn.fetch(self.q_entries, start, end), 3)
        bounds = [0, -1] * (self.max_level + 1)  # empty range for the levels this block completes nothing on
        for lv, lo, hi in ranges:
            bounds[2 * lv : 2 * lv + 2] = lo, hi
        levels: dict[int, tuple[Indexes, Hashes]] = {}
        for lv, ids, blob, ok in await conn.fetch(self.q_nodes, *bounds):
            ok = ok and blob is not None and len(blob) * 8 == len(ids) * merkle.HASH_SIZE  # string_agg skips NULLs
            levels[lv] = (ids, blob if ok else None)
        cps = await conn.fetch(self.q_cps, start, end)
        return _Block(idxs, data, leaves, levels, [(s, bytes(r), t) for s, r, t in cps], prefixed=True)


async def _reader(session: AsyncSession, max_level: int) -> Any:
    conn = await session.connection()
    dialect = conn.dialect
    quote = dialect.identifier_preparer.format_table
    if dialect.name == "postgresql" and dialect.driver == "asyncpg":
        return _AsyncpgReader((await conn.get_raw_connection()).driver_connection, quote, max_level)
    if dialect.name == "sqlite" and dialect.driver == "aiosqlite":
        return _SqliteReader(session, (await conn.get_raw_connection()).driver_connection, quote)
    return _SqlReader(session)


# --- checking a block as a whole ------------------------------------------------------------------------


def _in_order(ids: Indexes, values: Sequence[Any], first: int, count: int) -> Sequence[Any] | None:
    """``values`` ordered by ``ids``, if the ids are exactly first .. first + count - 1; else None."""
    if isinstance(ids, bytes):
        if ids == _packed(first, count):
            return values
        ids = list(struct.unpack(f">{len(ids) // 8}q", ids))
    want = list(range(first, first + count))
    if ids == want:
        return values
    if len(ids) != count or len(values) != count:
        return None
    order = sorted(range(count), key=ids.__getitem__)
    if [ids[i] for i in order] != want:
        return None
    return [values[i] for i in order]


def _split(hs: Hashes | list[Any]) -> list[Any] | None:
    if isinstance(hs, bytes):
        return [hs[i : i + merkle.HASH_SIZE] for i in range(0, len(hs), merkle.HASH_SIZE)]
    return hs


def _stored_level(block: _Block, level: int, first: int, count: int) -> Hashes:
    """The stored hashes of nodes (level, first .. first + count - 1), in index order; None if any is missing."""
    ids, hs = block.levels.get(level, (b"", b""))
    if hs is None:
        return None
    if isinstance(ids, bytes) and ids == _packed(first, count):
        return hs  # the reader checked that it holds one 32-byte hash per index
    if (hs := _split(hs)) is None:
        return None
    return _in_order(ids, hs, first, count)


def _same(stored: Hashes | list[Any], computed: list[bytes], joined: bytes | None = None) -> bool:
    if isinstance(stored, bytes):
        return (b"".join(computed) if joined is None else joined) == stored
    return stored is not None and computed == stored


async def _hash_block(start: int, end: int, block: _Block, top: int, reading: Callable[[], bool]) -> list[list[bytes]] | None:
    """Every complete subtree of the block [start, end) (``start`` aligned to ``2**top``), per level,
    if the stored entries and nodes match them all; None at the first difference (or unusable value)."""
    n = end - start
    data, stored_leaves = block.data, block.leaves
    if len(data) != n or stored_leaves is None:
        return None
    if (order := _in_order(block.idxs, range(n), start, n)) is None:
        return None
    if not isinstance(order, range):  # rows came out of index order: put them in it
        data, stored_leaves = [data[i] for i in order], _split(stored_leaves)
        stored_leaves = stored_leaves and [stored_leaves[i] for i in order]
    leaves: list[bytes] = []
    try:
        for i in range(0, n, _SLICE):
            if block.prefixed:
                leaves += map(_digest, map(_sha256, data[i : i + _SLICE]))
            else:
                leaves += [_sha256(b"\x00" + d).digest() for d in data[i : i + _SLICE]]
            if reading():
                await asyncio.sleep(0)
    except TypeError:  # not bytes (NULL, wrong type): let the per-entry pass name it
        return None
    if not _same(stored_leaves, leaves):
        return None
    levels = [leaves]
    for level in range(top + 1):
        cur = levels[level]
        blob = b"".join(cur)  # compared, then sliced into the pairs of the next level
        if not _same(_stored_level(block, level, start >> level, len(cur)), cur, blob):
            return None
        pairs = len(cur) // 2
        if level == top or not pairs:
            break
        step, nxt = 64 * _SLICE, []
        for i in range(0, 64 * pairs, step):
            nxt += [_sha256(b"\x01" + blob[k : k + 64]).digest() for k in range(i, min(i + step, 64 * pairs), 64)]
            if reading():
                await asyncio.sleep(0)
        levels.append(nxt)
    return levels


def _edge(upper: merkle.Frontier, levels: list[list[bytes]], start: int, size: int) -> list[bytes]:
    """Hashes of the complete subtrees of [0, size), start < size <= start + 2**top: those of [0, start)
    then those inside the block. (At a full block's end some would merge: fold() gives the same root.)"""
    out = upper.hashes()
    pos, n = 0, size - start
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            out.append(levels[level][pos >> level])
            pos += 1 << level
    return out


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """A block's rows (asyncpg records, SQLite tuples) live long enough to reach the oldest generation,
    and full collections walking them took a third of the run. Nothing here makes reference cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- the whole log ---------------------------------------------------------------------------------------


async def verify_log(
    session: AsyncSession, verifier: NoteVerifier | str, origin: str | None = None, chunk: int = 1 << 15
) -> VerifyReport:
    """Verify the whole stored log against the key that signs its checkpoints (see module doc).

    ``chunk``: entries per block, rounded down to a power of two."""
    v = NoteVerifier.from_string(verifier) if isinstance(verifier, str) else verifier
    rep = VerifyReport()
    target = await session.scalar(select(func.max(checkpoints.c.size))) or 0
    max_level = max(target.bit_length(), 1)
    top = max(chunk, 1).bit_length() - 1
    block_size = 1 << top

    def check_checkpoint(size: int, root: bytes, note: str, tree_root: bytes) -> str | None:
        try:
            cp = parse_checkpoint(open_note(note, v))
        except NoteError as exc:
            return f"checkpoint of size {size}: {exc}"
        if origin is not None and cp.origin != origin:
            return f"checkpoint of size {size}: origin {cp.origin!r} is not {origin!r}"
        if cp.size != size or cp.root != root:
            return f"checkpoint of size {size}: signed note says size {cp.size}, root {cp.root.hex()}, row says {root.hex()}"
        if tree_root != root:
            return f"checkpoint of size {size}: root {root.hex()} differs from the tree rebuilt from the entries ({tree_root.hex()})"
        return None

    async def entry_by_entry(end: int, frontier: merkle.Frontier) -> VerifyReport | None:
        """Verify [frontier.size, end) one entry at a time, naming the first failure (None: all good)."""
        c = checkpoints.c
        res = await session.execute(select(c.size, c.root, c.note).where(c.size > frontier.size, c.size <= end).order_by(c.size.desc()))
        cps = [(s, bytes(r), n) for s, r, n in res]  # smallest size last
        while frontier.size < end:
            start = frontier.size
            res = await session.execute(
                select(entries.c.idx, entries.c.entry, entries.c.leaf_hash)
                .where(entries.c.idx >= start, entries.c.idx < target)
                .order_by(entries.c.idx)
                .limit(end - start)
            )
            rows = res.all()
            if not rows:
                return rep.fail(f"entry {start} is missing (the log ends at {start}, checkpoints reach {target})", index=start)
            ranges = _node_ranges(start, rows[-1][0] + 1, max_level)
            cond = or_(*(and_(nodes.c.level == lv, nodes.c.idx.between(lo, hi)) for lv, lo, hi in ranges))
            stored = {(lv, ix): bytes(h) for lv, ix, h in await session.execute(select(nodes.c.level, nodes.c.idx, nodes.c.hash).where(cond))}
            for idx, data, leaf_col in rows:
                expected = frontier.size
                if idx != expected:
                    return rep.fail(f"entry {expected} is missing (next stored index is {idx})", index=expected)
                leaf = merkle.leaf_hash(bytes(data))
                if leaf != bytes(leaf_col):
                    return rep.fail(f"entry {idx}: bytes do not hash to the stored leaf hash (entry altered)", index=idx)
                for level, nidx, h in frontier.append(leaf):
                    have = stored.get((level, nidx))
                    first = nidx << level
                    if have is None:
                        return rep.fail(f"node ({level}, {nidx}) covering entries {first}..{((nidx + 1) << level) - 1} is missing", index=first, node=(level, nidx))
                    if have != h:
                        if level == 0:
                            return rep.fail(f"entry {idx} is not the entry the tree holds at that index (row moved, swapped, inserted or replaced)", index=idx, node=(0, idx))
                        return rep.fail(f"node ({level}, {nidx}) covering entries {first}..{((nidx + 1) << level) - 1} does not match its children", index=first, node=(level, nidx))
                    rep.nodes += 1
                rep.size = frontier.size
                while cps and cps[-1][0] <= frontier.size:
                    size, root, note = cps.pop()
                    if err := check_checkpoint(size, root, note, frontier.root()):
                        return rep.fail(err, checkpoint=frontier.size)
                    rep.checkpoints += 1
        return None

    if target >= 0:  # the empty tree's checkpoint
        c = checkpoints.c
        for size, root, note in await session.execute(select(c.size, c.root, c.note).where(c.size == 0)):
            if err := check_checkpoint(size, bytes(root), note, merkle.EMPTY_ROOT):
                return rep.fail(err, checkpoint=0)
            rep.checkpoints += 1

    reader = await _reader(session, max_level)
    upper = merkle.Frontier()  # the complete subtrees of [0, start): all at level >= top
    edge: list[bytes] = []  # those of [0, end) once a block is done
    pending: asyncio.Future[_Block] | None = None

    def read(start: int) -> asyncio.Future[_Block]:
        end = min(start + block_size, target)
        return asyncio.ensure_future(reader.read(start, end, _node_ranges(start, end, max_level)))

    def reading() -> bool:
        return pending is not None and not pending.done()

    async def blocks() -> VerifyReport | None:
        nonlocal pending, upper, edge
        if target > 0:
            pending = read(0)
        for start in range(0, max(target, 0), block_size):
            end = min(start + block_size, target)
            assert pending is not None
            block, pending = await asyncio.shield(pending), None  # cancelled mid-read, the finally lets it end
            if end < target:
                pending = read(end)  # overlaps with hashing this block
            new_edge = None
            levels = await _hash_block(start, end, block, top, reading)
            if levels is not None:
                ok = True
                if end - start == block_size:  # this block's root completes the subtrees above it
                    probe = merkle.Frontier(upper.size, upper.hashes())
                    for level, nidx, h in probe.append(levels[top][0])[1:]:
                        ok = ok and _same(_stored_level(block, top + level, nidx, 1), [h])
                    new_edge = probe.hashes()
                else:
                    new_edge = _edge(upper, levels, start, end)
                for size, root, note in block.cps:
                    ok = ok and check_checkpoint(size, root, note, merkle.fold(_edge(upper, levels, start, size))) is None
                if not ok:
                    new_edge = None
            if new_edge is not None:
                edge = new_edge
                rep.checkpoints += len(block.cps)
            else:  # something differs: find the first failure exactly as a frontier would
                if pending is not None:
                    await asyncio.wait([pending])  # one query at a time on the connection
                frontier = merkle.Frontier(start, upper.hashes())
                if failed := await entry_by_entry(end, frontier):
                    return failed
                edge = frontier.hashes()
            rep.size, rep.nodes = end, 2 * end - end.bit_count()
            if end % block_size == 0:
                upper = merkle.Frontier(end >> top, edge)
        return None

    try:
        with _gc_paused():
            if failed := await blocks():
                return failed
    finally:
        if pending is not None:  # leave the connection idle for the caller
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()
    rep.root = merkle.fold(edge)

    # Rows behind the sequencer's back: read the high-water marks first, then the latest checkpoint,
    # so that a batch committed meanwhile by a running sequencer is not mistaken for one.
    last_entry = await session.scalar(select(func.max(entries.c.idx)))
    node_end = (nodes.c.idx + 1).op("<<")(nodes.c.level)
    last_node_end = await session.scalar(select(func.max(node_end)))
    latest = await session.scalar(select(func.max(checkpoints.c.size))) or 0
    if last_entry is not None and last_entry >= latest:
        return rep.fail(f"entries {latest}..{last_entry} are not covered by any signed checkpoint", index=latest)
    if last_node_end is not None and last_node_end > latest:
        return rep.fail(f"ledger_nodes holds nodes beyond the latest checkpoint (up to entry {last_node_end - 1})", index=latest)
    return rep
