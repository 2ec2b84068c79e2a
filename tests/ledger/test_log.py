"""The log in SQL: submitting inside the caller's transaction, topics, sequencing in batches and
concurrently, proofs read from the stored nodes, and the integrator running on its own."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, select

from ledger import EMPTY_ROOT, Entry, PersonalDataError, ProofError, merkle, verify_checkpoint
from ledger.store import entries, nodes, pending
from tests.fixtures.ledger import (
    ORIGIN,
    all_entry_bytes,
    checkpoint_sizes,
    entry,
    ref_mth,
    ref_path,
    ref_proof,
    report,
    submit,
)


def test_tables_are_prefixed():
    from ledger.store import metadata

    assert sorted(metadata.tables) == ["ledger_checkpoints", "ledger_entries", "ledger_nodes", "ledger_pending", "ledger_topics"]


async def test_empty_log(db):
    async with db.sessions() as s:
        assert await db.ledger.latest_checkpoint(s) is None
    assert await db.seq.integrate(db.sessions) == 0
    async with db.sessions() as s:
        cp = await db.ledger.latest_checkpoint(s)
        assert (cp.size, cp.root) == (0, EMPTY_ROOT)
        assert verify_checkpoint(cp.note, db.ledger.verifier_key).size == 0
        assert await db.ledger.consistency_proof(s, 0, 0) == []
        with pytest.raises(ProofError):
            await db.ledger.inclusion_proof(s, 0, 1)
    assert await db.seq.integrate(db.sessions) == 0
    assert await checkpoint_sizes(db) == [0]
    rep = await report(db)
    assert rep.ok and rep.size == 0 and rep.checkpoints == 1, rep


async def test_submit_is_part_of_the_callers_transaction(db):
    async with db.sessions() as s, s.begin():
        r = await db.ledger.submit(s, entry(1))
        assert r.leaf_hash == merkle.leaf_hash(entry(1).to_bytes())
        await s.rollback()
    assert await db.seq.integrate(db.sessions) == 0
    async with db.sessions() as s, s.begin():
        r = await db.ledger.submit(s, entry(2))
    async with db.sessions() as s:
        assert await db.ledger.find(s, r.leaf_hash) == []  # pending, not yet sequenced
    assert await db.seq.integrate(db.sessions) == 1
    async with db.sessions() as s:
        assert await db.ledger.find(s, r.leaf_hash) == [0]
        (got,) = await db.ledger.entries(s, 0, 10)
        assert Entry.from_bytes(got.entry) == entry(2) and got.leaf_hash == r.leaf_hash
    sneaky = entry(3)
    object.__setattr__(sneaky, "extra", {"buyerName": "x"})  # bypassing the constructor's check
    with pytest.raises(PersonalDataError):
        async with db.sessions() as s, s.begin():
            await db.ledger.submit(s, sneaky)
    assert await all_entry_bytes(db) == [entry(2).to_bytes()]


async def test_topics_index_sequenced_entries(db):
    async with db.sessions() as s, s.begin():
        await db.ledger.submit_many(s, [
            (entry(0), ["order:A/1", "party:A"]), entry(1), (entry(2), ["party:A", "party:A"]), (entry(3), ["order:A/1"]),
        ])
        with pytest.raises(ValueError):
            await db.ledger.submit(s, entry(4), ["two\nlines"])
        with pytest.raises(ValueError):
            await db.ledger.submit(s, entry(4), ["x" * 201])
    async with db.sessions() as s:
        assert await db.ledger.indexes_for(s, ["party:A"]) == []  # nothing before sequencing
    assert await db.seq.integrate(db.sessions, max_batch=3) == 4  # topics follow entries across batches
    async with db.sessions() as s:
        assert await db.ledger.indexes_for(s, ["order:A/1"]) == [0, 3]
        assert await db.ledger.indexes_for(s, ["order:A/1", "party:A"]) == [0, 2, 3]
        assert await db.ledger.indexes_for(s, ["party:A", "order:A/1"], start=1, end=3) == [2]
        assert await db.ledger.indexes_for(s, ["order:A/1", "party:A"], limit=2) == [0, 2]
        assert await db.ledger.topics_of(s, [0, 1, 2]) == {0: {"order:A/1", "party:A"}, 1: set(), 2: {"party:A"}}
        got = await db.ledger.entries_at(s, [3, 0, 99])
        assert [(e.index, Entry.from_bytes(e.entry)) for e in got] == [(0, entry(0)), (3, entry(3))]
    assert (await report(db)).ok


async def test_stored_node_proofs_equal_reference(db):
    """One batch per entry, so every size 1..20 is checkpointed; every proof read from stored nodes."""
    for i in range(20):
        await submit(db, [entry(i)])
        assert await db.seq.integrate(db.sessions) == 1
    data = tuple(await all_entry_bytes(db))
    assert data == tuple(entry(i).to_bytes() for i in range(20))
    assert await checkpoint_sizes(db) == list(range(1, 21))
    async with db.sessions() as s:
        for n in range(1, 21):
            cp = await db.ledger.checkpoint_at(s, n)
            assert cp.root == ref_mth(data[:n]) == await db.ledger.root_at(s, n)
            for i in range(n):
                proof = await db.ledger.inclusion_proof(s, i, n)
                assert proof == ref_path(i, data[:n])
                assert merkle.verify_inclusion(merkle.leaf_hash(data[i]), i, n, proof, cp.root)
            for m in range(n + 1):
                proof = await db.ledger.consistency_proof(s, m, n)
                assert proof == (ref_proof(m, data[:n]) if 0 < m < n else [])
                assert merkle.verify_consistency(m, n, ref_mth(data[:m]), cp.root, proof)
        with pytest.raises(ProofError):
            await db.ledger.inclusion_proof(s, 20, 21)
        with pytest.raises(ProofError):
            await db.ledger.inclusion_proof(s, 3, 21)
        with pytest.raises(ProofError):
            await db.ledger.consistency_proof(s, 5, 21)
        with pytest.raises(ProofError):
            await db.ledger.consistency_proof(s, 6, 5)


async def test_proofs_read_a_logarithmic_number_of_nodes_in_one_query(db):
    await submit(db, [entry(i) for i in range(300)])
    await db.seq.integrate(db.sessions, max_batch=1000)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.sessions() as s:
            proof = await db.ledger.inclusion_proof(s, 123, 300)
            cproof = await db.ledger.consistency_proof(s, 77, 300)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 2 and all("ledger_nodes" in st for st in statements)
    assert len(proof) <= 9 and len(cproof) <= 2 * 9


@pytest.mark.parametrize("batches", [[1], [3], [7], [64], [1000], [5, 1, 13, 2]])
async def test_batches_integrate_consistently(db, batches):
    total = 100
    await submit(db, [entry(i) for i in range(total)])
    done, k = 0, 0
    while done < total:
        size = batches[k % len(batches)]
        got = await db.seq.integrate(db.sessions, max_batch=size, max_batches=1)
        assert got == min(size, total - done)
        done += got
        k += 1
    assert await db.seq.integrate(db.sessions, max_batch=10) == 0
    data = tuple(await all_entry_bytes(db))
    assert data == tuple(entry(i).to_bytes() for i in range(total))  # submission order kept
    sizes = await checkpoint_sizes(db)
    assert sizes[-1] == total
    async with db.sessions() as s:
        prev = None
        for n in sizes:
            cp = await db.ledger.checkpoint_at(s, n)
            assert verify_checkpoint(cp.note, db.ledger.verifier_key, ORIGIN).root == cp.root == ref_mth(data[:n])
            if prev is not None:
                proof = await db.ledger.consistency_proof(s, prev.size, n)
                assert merkle.verify_consistency(prev.size, n, prev.root, cp.root, proof)
            prev = cp
        count = len((await s.execute(select(nodes.c.level))).all())
        assert count == 2 * total - total.bit_count()
    rep = await report(db)
    assert rep.ok and rep.size == total and rep.checkpoints == len(sizes) and rep.root == ref_mth(data), rep


async def test_concurrent_submits_and_integrators(db):
    """50 tasks x 20 entries, each entry its own transaction, while two integrators run."""
    tasks_n, per_task = 50, 20
    stop = asyncio.Event()

    async def submitter(t: int) -> None:
        for i in range(per_task):
            async with db.sessions() as s, s.begin():
                await db.ledger.submit(s, entry(i, task=t))
            await asyncio.sleep(0)

    async def integrator() -> int:
        n = 0
        while not stop.is_set():
            n += await db.seq.integrate(db.sessions, max_batch=37)
            await asyncio.sleep(0.005)
        return n

    integrators = [asyncio.create_task(integrator()) for _ in range(2)]
    await asyncio.gather(*(submitter(t) for t in range(tasks_n)))
    stop.set()
    sequenced = sum(await asyncio.gather(*integrators))
    sequenced += await db.seq.integrate(db.sessions, max_batch=500)
    assert sequenced == tasks_n * per_task
    async with db.sessions() as s:
        idx = [i for (i,) in await s.execute(select(entries.c.idx).order_by(entries.c.idx))]
        assert idx == list(range(tasks_n * per_task))  # gap-free
        assert (await s.execute(select(pending.c.id))).first() is None
        cp = await db.ledger.latest_checkpoint(s)
        assert cp.size == tasks_n * per_task
    data = await all_entry_bytes(db)
    assert sorted(data) == sorted(entry(i, task=t).to_bytes() for t in range(tasks_n) for i in range(per_task))
    for t in range(tasks_n):  # each task's entries keep their order
        mine = [d for d in data if f"ORD-{t:03d}-".encode() in d]
        assert mine == [entry(i, task=t).to_bytes() for i in range(per_task)]
    assert cp.root == ref_mth(tuple(data))
    rep = await report(db)
    assert rep.ok and rep.size == tasks_n * per_task, rep


async def test_run_forever(db):
    task = asyncio.create_task(db.seq.run_forever(db.sessions, interval=30))
    try:
        await asyncio.sleep(0.05)
        async with db.sessions() as s, s.begin():
            await db.ledger.submit_many(s, [entry(i) for i in range(5)])
        db.seq.notify()
        for _ in range(200):
            async with db.sessions() as s:
                cp = await db.ledger.latest_checkpoint(s)
            if cp and cp.size == 5:
                break
            await asyncio.sleep(0.02)
        assert cp and cp.size == 5
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
