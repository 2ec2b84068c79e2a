"""Full verification of the stored log: every entry, every node, every checkpoint.

``verify_log`` streams the entries in index order (bounded memory), recomputes each leaf from the
stored bytes, rebuilds the tree with a frontier, and compares as it goes:

* the recomputed leaf with ``ledger_entries.leaf_hash``        -> a changed byte in an entry;
* the index sequence                                           -> a deleted row (a gap);
* each completed subtree with its ``ledger_nodes`` row, level 0 (the tree's copy of the leaf hashes)
  first                                                        -> moved, swapped or inserted rows;
* each checkpoint's signature, origin, size and root with the rebuilt tree of that size
                                                               -> forged or altered checkpoints;
* entries and nodes beyond the latest checkpoint               -> rows appended behind the sequencer.

It stops at the first failure, so ``failed_index`` is the lowest index at which the stored log is
inconsistent. If rows *and* nodes were rewritten consistently, only a signed checkpoint can tell: the
failure then names the first checkpoint that does not match (``failed_checkpoint``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from . import merkle
from .checkpoint import NoteError, NoteVerifier, open_note, parse_checkpoint
from .store import checkpoints, entries, nodes


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


async def verify_log(
    session: AsyncSession, verifier: NoteVerifier | str, origin: str | None = None, chunk: int = 5000
) -> VerifyReport:
    """Verify the whole stored log against the key that signs its checkpoints (see module doc)."""
    v = NoteVerifier.from_string(verifier) if isinstance(verifier, str) else verifier
    rep = VerifyReport()
    target = await session.scalar(select(func.max(checkpoints.c.size))) or 0
    frontier = merkle.Frontier()
    cps: list[tuple[int, bytes, str]] = []  # upcoming checkpoints, smallest size last
    cp_after = -1

    async def next_checkpoints() -> None:
        nonlocal cp_after
        res = await session.execute(
            select(checkpoints.c.size, checkpoints.c.root, checkpoints.c.note)
            .where(checkpoints.c.size > cp_after, checkpoints.c.size <= target)
            .order_by(checkpoints.c.size)
            .limit(chunk)
        )
        got = [(s, bytes(r), n) for s, r, n in res]
        if got:
            cp_after = got[-1][0]
        cps.extend(reversed(got))
        cps.sort(key=lambda c: -c[0])

    def check_checkpoint(size: int, root: bytes, note: str) -> str | None:
        try:
            cp = parse_checkpoint(open_note(note, v))
        except NoteError as exc:
            return f"checkpoint of size {size}: {exc}"
        if origin is not None and cp.origin != origin:
            return f"checkpoint of size {size}: origin {cp.origin!r} is not {origin!r}"
        if cp.size != size or cp.root != root:
            return f"checkpoint of size {size}: signed note says size {cp.size}, root {cp.root.hex()}, row says {root.hex()}"
        if frontier.root() != root:
            return f"checkpoint of size {size}: root {root.hex()} differs from the tree rebuilt from the entries ({frontier.root().hex()})"
        return None

    async def checkpoints_due() -> str | None:
        while True:
            if not cps:
                await next_checkpoints()
                if not cps:
                    return None
            size, root, note = cps[-1]
            if size > frontier.size:
                return None
            cps.pop()
            err = check_checkpoint(size, root, note)
            if err:
                return err
            rep.checkpoints += 1

    if err := await checkpoints_due():  # the empty tree's checkpoint
        return rep.fail(err, checkpoint=0)

    max_level = max(target.bit_length(), 1)
    while frontier.size < target:
        start = frontier.size
        res = await session.execute(
            select(entries.c.idx, entries.c.entry, entries.c.leaf_hash)
            .where(entries.c.idx >= start, entries.c.idx < target)
            .order_by(entries.c.idx)
            .limit(chunk)
        )
        rows = res.all()
        if not rows:
            return rep.fail(f"entry {start} is missing (the log ends at {start}, checkpoints reach {target})", index=start)
        end = rows[-1][0] + 1
        ranges = _node_ranges(start, end, max_level)
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
            if err := await checkpoints_due():
                return rep.fail(err, checkpoint=frontier.size)
    rep.root = frontier.root()
    if cps:
        size = cps[-1][0]
        return rep.fail(f"checkpoint of size {size} lies beyond the entries", index=frontier.size, checkpoint=size)

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
