"""Full verification (``verify_log``) of a tampered log: it names the first failing index, node or
checkpoint, whatever the block size and however the rows are stored; the sequencer refuses a damaged
right edge."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update

from ledger import NoteSigner, merkle
from ledger import log as ledger_log
from ledger.checkpoint import sign_checkpoint
from ledger.integrity import verify_log
from ledger.sequencer import LedgerCorruptedError
from ledger.store import checkpoints, entries, nodes, pending
from tests.fixtures.ledger import DB, ORIGIN, all_entry_bytes, entry, flip, ref_mth, report, submit, tree_nodes

# --- tampering: verify_log names the first failing index or checkpoint -------------------------------

N_TAMPER = 37


async def tamper_setup(db: DB) -> list[bytes]:
    await submit(db, [entry(i) for i in range(N_TAMPER)])
    await db.seq.integrate(db.sessions, max_batch=5)  # checkpoints 5, 10, ..., 35, 37
    rep = await report(db)
    assert rep.ok and rep.size == N_TAMPER, rep
    return await all_entry_bytes(db)


async def execute(db: DB, *statements) -> None:
    async with db.sessions() as s, s.begin():
        for st in statements:
            await s.execute(st)


async def shift(db: DB, start: int, by: int) -> None:
    """Renumber entries ``idx >= start`` by ``by`` (through negatives: no transient PK clash)."""
    await execute(
        db,
        update(entries).where(entries.c.idx >= start).values(idx=-entries.c.idx - 1),
        update(entries).where(entries.c.idx < 0).values(idx=-entries.c.idx - 1 + by),
    )


async def test_verify_catches_flipped_byte(db):
    data = await tamper_setup(db)
    changed = bytearray(data[13])
    changed[20] ^= 0x01
    await execute(db, update(entries).where(entries.c.idx == 13).values(entry=bytes(changed)))
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 13 and "altered" in rep.error, rep


async def test_verify_catches_deleted_row(db):
    await tamper_setup(db)
    await execute(db, delete(entries).where(entries.c.idx == 13))
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 13 and "missing" in rep.error, rep


async def test_verify_catches_deleted_row_closed_up(db):
    await tamper_setup(db)
    await execute(db, delete(entries).where(entries.c.idx == 13))
    await shift(db, 14, -1)
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 13, rep


async def test_verify_catches_deleted_last_row(db):
    await tamper_setup(db)
    await execute(db, delete(entries).where(entries.c.idx == N_TAMPER - 1))
    rep = await report(db)
    assert not rep.ok and rep.failed_index == N_TAMPER - 1, rep


async def test_verify_catches_swapped_rows(db):
    data = await tamper_setup(db)
    await execute(
        db,
        update(entries).where(entries.c.idx == 21).values(idx=-1),
        update(entries).where(entries.c.idx == 9).values(idx=21),
        update(entries).where(entries.c.idx == -1).values(idx=9),
    )
    assert (await all_entry_bytes(db))[9] == data[21]
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 9, rep


async def test_verify_catches_swapped_adjacent_entry_bytes(db):
    data = await tamper_setup(db)
    await execute(
        db,
        update(entries).where(entries.c.idx == 16).values(entry=data[17], leaf_hash=merkle.leaf_hash(data[17])),
        update(entries).where(entries.c.idx == 17).values(entry=data[16], leaf_hash=merkle.leaf_hash(data[16])),
    )
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 16, rep


async def test_verify_catches_inserted_row(db):
    await tamper_setup(db)
    await shift(db, 17, +1)
    forged = entry(999).to_bytes()
    await execute(db, insert(entries).values(idx=17, entry=forged, leaf_hash=merkle.leaf_hash(forged), created_at=ledger_log.utcnow()))
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 17, rep


async def test_verify_catches_appended_row(db):
    await tamper_setup(db)
    forged = entry(999).to_bytes()
    await execute(db, insert(entries).values(idx=N_TAMPER, entry=forged, leaf_hash=merkle.leaf_hash(forged), created_at=ledger_log.utcnow()))
    rep = await report(db)
    assert not rep.ok and rep.failed_index == N_TAMPER and "not covered" in rep.error, rep


async def test_verify_catches_altered_node(db):
    await tamper_setup(db)
    await execute(db, update(nodes).where(nodes.c.level == 2, nodes.c.idx == 3).values(hash=b"\x00" * 32))
    rep = await report(db)
    assert not rep.ok and rep.failed_node == (2, 3) and rep.failed_index == 12, rep


async def test_verify_catches_consistent_rewrite_by_checkpoint(db):
    """Entry, leaf hash and every node rewritten to match: only the signed checkpoints can tell."""
    data = await tamper_setup(db)
    data[22] = entry(999).to_bytes()
    await execute(db, update(entries).where(entries.c.idx == 22).values(entry=data[22], leaf_hash=merkle.leaf_hash(data[22])))
    for (lv, ix), h in tree_nodes(data).items():
        await execute(db, update(nodes).where(nodes.c.level == lv, nodes.c.idx == ix).values(hash=h))
    rep = await report(db)
    assert not rep.ok and rep.failed_checkpoint == 25 and rep.failed_index is None, rep


async def test_verify_catches_altered_checkpoint_root(db):
    await tamper_setup(db)
    await execute(db, update(checkpoints).where(checkpoints.c.size == 20).values(root=b"\x11" * 32))
    rep = await report(db)
    assert not rep.ok and rep.failed_checkpoint == 20, rep


async def test_verify_catches_checkpoint_signed_by_another_key(db):
    data = await tamper_setup(db)
    forger = NoteSigner.generate(ORIGIN)
    fake_root = ref_mth(tuple(data[:14]) + (entry(999).to_bytes(),))
    await execute(db, update(checkpoints).where(checkpoints.c.size == 15).values(root=fake_root, note=sign_checkpoint(forger, ORIGIN, 15, fake_root)))
    rep = await report(db)
    assert not rep.ok and rep.failed_checkpoint == 15 and "no signature" in rep.error, rep


async def test_verify_catches_edited_checkpoint_note(db):
    await tamper_setup(db)
    async with db.sessions() as s:
        note = await s.scalar(select(checkpoints.c.note).where(checkpoints.c.size == 30))
    body, sig = note.split("\n\n")
    lines = body.split("\n")
    lines[1] = "31"
    await execute(db, update(checkpoints).where(checkpoints.c.size == 30).values(note="\n".join(lines) + "\n\n" + sig))
    rep = await report(db)
    assert not rep.ok and rep.failed_checkpoint == 30 and "invalid signature" in rep.error, rep


async def test_verify_catches_forged_extra_checkpoint(db):
    data = await tamper_setup(db)
    forger = NoteSigner.generate(ORIGIN)
    root = ref_mth(tuple(data[:12]))  # the right root, but not signed by the ledger's key
    await execute(db, insert(checkpoints).values(size=12, root=root, note=sign_checkpoint(forger, ORIGIN, 12, root), created_at=ledger_log.utcnow()))
    rep = await report(db)
    assert not rep.ok and rep.failed_checkpoint == 12, rep


# verify_log checks a block of entries at a time and, where a block differs, goes over it entry by
# entry: whatever the block size, a report must be the one the entry-by-entry pass gives.

BLOCK_SIZES = (1, 2, 4, 16, 1 << 15)


async def reports_by_block_size(db: DB) -> list[tuple]:
    out = []
    for chunk in BLOCK_SIZES:
        async with db.sessions() as s:
            r = await verify_log(s, db.ledger.verifier_key, origin=ORIGIN, chunk=chunk)
        out.append((r.ok, r.error, r.failed_index, r.failed_checkpoint, r.failed_node, r.size, r.nodes, r.checkpoints, r.root))
    return out


async def test_verify_reports_the_same_for_any_block_size(db):
    data = await tamper_setup(db)
    (clean, *others) = await reports_by_block_size(db)
    n = N_TAMPER
    assert clean == (True, None, None, None, None, n, 2 * n - n.bit_count(), 8, ref_mth(tuple(data))), clean
    assert all(o == clean for o in others), others
    leaf13 = merkle.leaf_hash(data[13])
    node23 = tree_nodes(data)[(2, 3)]
    async with db.sessions() as s:
        root20 = await s.scalar(select(checkpoints.c.root).where(checkpoints.c.size == 20))
    changed = bytearray(data[13])
    changed[20] ^= 0x01
    for tamper, undo in [
        (update(entries).where(entries.c.idx == 13).values(entry=bytes(changed)), update(entries).where(entries.c.idx == 13).values(entry=data[13])),
        (update(entries).where(entries.c.idx == 13).values(leaf_hash=flip(leaf13)), update(entries).where(entries.c.idx == 13).values(leaf_hash=leaf13)),
        (update(nodes).where(nodes.c.level == 2, nodes.c.idx == 3).values(hash=b"\x00" * 32), update(nodes).where(nodes.c.level == 2, nodes.c.idx == 3).values(hash=node23)),
        (update(checkpoints).where(checkpoints.c.size == 20).values(root=b"\x11" * 32), update(checkpoints).where(checkpoints.c.size == 20).values(root=root20)),
        (delete(nodes).where(nodes.c.level == 0, nodes.c.idx == 33), insert(nodes).values(level=0, idx=33, hash=merkle.leaf_hash(data[33]))),
    ]:
        await execute(db, tamper)
        (first, *others) = await reports_by_block_size(db)
        assert not first[0] and all(o == first for o in others), (tamper, first, others)
        await execute(db, undo)
    assert (await reports_by_block_size(db))[0] == clean


async def test_verify_checkpoint_at_every_size(db):
    data = [entry(i).to_bytes() for i in range(21)]
    await submit(db, [entry(i) for i in range(21)])
    await db.seq.integrate(db.sessions, max_batch=1)
    (clean, *others) = await reports_by_block_size(db)
    assert clean[:3] == (True, None, None) and clean[7] == 21 and clean[8] == ref_mth(tuple(data)), clean
    assert all(o == clean for o in others), others
    forger = NoteSigner.generate(ORIGIN)
    root = ref_mth(tuple(data[:11]))
    await execute(db, update(checkpoints).where(checkpoints.c.size == 11).values(note=sign_checkpoint(forger, ORIGIN, 11, root)))
    (first, *others) = await reports_by_block_size(db)
    assert first[0] is False and first[3] == 11 and first[5] == 11 and first[7] == 10, first
    assert all(o == first for o in others), others


async def test_verify_through_sqlalchemy_rows_reports_the_same(db, monkeypatch):
    """Drivers other than asyncpg and aiosqlite are read through SQLAlchemy: the same reports."""
    from ledger import integrity

    data = await tamper_setup(db)

    async def generic(session, max_level):
        return integrity._SqlReader(session)

    changed = bytearray(data[29])
    changed[5] ^= 0x40
    for tamper in [None, update(entries).where(entries.c.idx == 29).values(entry=bytes(changed)), delete(nodes).where(nodes.c.level == 1, nodes.c.idx == 3)]:
        if tamper is not None:
            await execute(db, tamper)
        native = await reports_by_block_size(db)
        with monkeypatch.context() as m:
            m.setattr(integrity, "_reader", generic)
            assert await reports_by_block_size(db) == native
        assert native[0][0] == (tamper is None), native[0]


async def rewrite_in_order(db: DB, table, keys: list[dict], values: list[dict]) -> None:
    """UPDATE the rows one by one, in this order: on PostgreSQL each new row version goes to the end of
    the heap, so that a scan without ORDER BY returns them in this order."""
    for key, vals in zip(keys, values):
        await execute(db, update(table).where(*(table.c[k] == v for k, v in key.items())).values(**vals))


async def test_verify_passes_rows_stored_out_of_index_order(db):
    data = await tamper_setup(db)
    tree = tree_nodes(data)
    idxs = list(range(N_TAMPER - 1, -1, -3))
    await rewrite_in_order(db, entries, [{"idx": i} for i in idxs], [{"entry": data[i]} for i in idxs])
    ids = sorted(tree, reverse=True)[::2]
    await rewrite_in_order(db, nodes, [{"level": lv, "idx": ix} for lv, ix in ids], [{"hash": tree[(lv, ix)]} for lv, ix in ids])
    rep = await report(db)
    assert rep.ok and rep.root == ref_mth(tuple(data)), rep
    assert all(r[0] for r in await reports_by_block_size(db))


async def test_verify_catches_swapped_entry_bytes_stored_in_swapped_order(db):
    """Rows 16 and 17 swap contents, and the heap order swaps too: read in storage order, the bytes
    would look right. Only their indexes tell."""
    data = await tamper_setup(db)
    await rewrite_in_order(db, entries, [{"idx": 17}, {"idx": 16}], [
        {"entry": data[16], "leaf_hash": merkle.leaf_hash(data[16])}, {"entry": data[17], "leaf_hash": merkle.leaf_hash(data[17])}])
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 16, rep
    (first, *others) = await reports_by_block_size(db)
    assert first[2] == 16 and all(o == first for o in others), (first, others)


async def test_verify_catches_swapped_nodes_stored_in_swapped_order(db):
    data = await tamper_setup(db)
    tree = tree_nodes(data)
    await rewrite_in_order(db, nodes, [{"level": 1, "idx": 3}, {"level": 1, "idx": 2}], [{"hash": tree[(1, 2)]}, {"hash": tree[(1, 3)]}])
    for r in await reports_by_block_size(db):
        assert r[:5] == (False, "node (1, 2) covering entries 4..5 does not match its children", 4, None, (1, 2)), r


async def test_verify_catches_node_hashes_split_across_rows(db):
    """Hashes of 31 and 33 bytes that concatenate to the right 64 are still wrong nodes."""
    data = await tamper_setup(db)
    tree = tree_nodes(data)
    h4, h5 = tree[(0, 4)], tree[(0, 5)]
    await execute(db, update(nodes).where(nodes.c.level == 0, nodes.c.idx == 4).values(hash=h4[:31]),
                  update(nodes).where(nodes.c.level == 0, nodes.c.idx == 5).values(hash=h4[31:] + h5))
    for r in await reports_by_block_size(db):
        assert not r[0] and r[2] == 4 and r[4] == (0, 4) and "entry 4 is not the entry the tree holds" in r[1], r
    await execute(db, update(nodes).where(nodes.c.level == 0, nodes.c.idx == 4).values(hash=h4),
                  update(nodes).where(nodes.c.level == 0, nodes.c.idx == 5).values(hash=h5),
                  update(entries).where(entries.c.idx == 8).values(leaf_hash=tree[(0, 8)][:31]),
                  update(entries).where(entries.c.idx == 9).values(leaf_hash=tree[(0, 8)][31:] + tree[(0, 9)]))
    for r in await reports_by_block_size(db):
        assert not r[0] and r[2] == 8 and "entry 8: bytes do not hash to the stored leaf hash" in r[1], r


async def test_sequencer_refuses_a_damaged_right_edge(db):
    await tamper_setup(db)
    await execute(db, update(nodes).where(nodes.c.level == 5, nodes.c.idx == 0).values(hash=b"\x00" * 32))
    await submit(db, [entry(100)])
    with pytest.raises(LedgerCorruptedError):
        await db.seq.integrate(db.sessions)
    async with db.sessions() as s:  # nothing was taken from pending
        assert len((await s.execute(select(pending.c.id))).all()) == 1
