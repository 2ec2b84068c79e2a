"""Ledger benchmark: appends per second, proof latency at 10^6 entries, full-verify throughput.

    .venv/bin/python bench/ledger.py [--entries 1000000] [--appends 5000] [--concurrency 32]
                                     [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/swx_bench]

Runs on a temporary SQLite file (WAL, synchronous=FULL, as the gateway configures it) and, when
``--database-url`` names a PostgreSQL database, there too -- inside a schema of its own
(``ledger_bench``, dropped and recreated; nothing else in that database is touched).

For each backend:

1. live appends: ``--concurrency`` tasks submit ``--appends`` entries, one entry per transaction (as
   the gateway will, next to a business change), while ``Sequencer.run_forever`` integrates in the
   background; the clock stops when the last entry is under a signed checkpoint;
2. bulk load of ``--entries`` entries: ``submit_many`` in transactions of 10,000, then ``integrate``
   in batches of 20,000 (each batch one transaction and one signed checkpoint);
3. inclusion and consistency proofs at that size, from random indexes (one query each);
4. ``verify_log`` over the whole log: entries per second.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger import Entry, Ledger, NoteSigner, merkle
from ledger.integrity import verify_log
from ledger.store import create_all, drop_all

SCHEMA = "ledger_bench"
TIME = "2024-05-01T08:30:00.123Z"


def make_entry(i: int) -> Entry:
    return Entry(
        "filing.accepted",
        f"E{i % 97:07d}",
        {"ebpCode": f"E{i % 97:07d}", "orderNo": f"ORD{i:010d}"},
        hashlib.sha256(i.to_bytes(8, "big")).hexdigest(),
        TIME,
        {"msgType": "CEB311"},
    )


async def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 60}, pool_size=40, max_overflow=0)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    await admin.dispose()
    return create_async_engine(url, pool_size=40, max_overflow=0, connect_args={"server_settings": {"search_path": SCHEMA}})


async def fresh(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await drop_all(conn)
        await create_all(conn)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


async def live_appends(engine: AsyncEngine, ledger: Ledger, n: int, concurrency: int) -> float:
    await fresh(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    seq = ledger.sequencer()
    runner = asyncio.create_task(seq.run_forever(sessions, interval=0.05, max_batch=2000))
    await asyncio.sleep(0.1)
    per_task = n // concurrency
    entries = [make_entry(i) for i in range(per_task * concurrency)]

    async def submitter(t: int) -> None:
        for e in entries[t * per_task : (t + 1) * per_task]:
            async with sessions() as s, s.begin():
                await ledger.submit(s, e)
            seq.notify()

    t0 = time.perf_counter()
    await asyncio.gather(*(submitter(t) for t in range(concurrency)))
    t_submit = time.perf_counter() - t0
    while True:
        async with sessions() as s:
            cp = await ledger.latest_checkpoint(s)
        if cp and cp.size == len(entries):
            break
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    runner.cancel()
    try:
        await runner
    except asyncio.CancelledError:
        pass
    async with sessions() as s:
        n_cp = await s.scalar(text("SELECT count(*) FROM ledger_checkpoints"))
    print(
        f"  live appends      {len(entries) / elapsed:10,.0f} /s   ({len(entries):,} entries, {concurrency} submitters, "
        f"1 entry per transaction; submits done in {t_submit:.1f}s, all signed after {elapsed:.1f}s, {n_cp} checkpoints)"
    )
    return len(entries) / elapsed


async def bulk_load(engine: AsyncEngine, ledger: Ledger, n: int) -> dict:
    await fresh(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    seq = ledger.sequencer()
    t_make = t_submit = t_integrate = 0.0
    chunk = 10_000
    for start in range(0, n, 200_000):
        t0 = time.perf_counter()
        batch = [make_entry(i) for i in range(start, min(n, start + 200_000))]
        t1 = time.perf_counter()
        for i in range(0, len(batch), chunk):
            async with sessions() as s, s.begin():
                await ledger.submit_many(s, batch[i : i + chunk])
        t2 = time.perf_counter()
        await seq.integrate(sessions, max_batch=20_000)
        t3 = time.perf_counter()
        t_make, t_submit, t_integrate = t_make + t1 - t0, t_submit + t2 - t1, t_integrate + t3 - t2
        if sys.stdout.isatty():
            print(f"    loaded {start + len(batch):>9,} entries", end="\r", flush=True)
    total = t_submit + t_integrate
    print(
        f"  bulk appends      {n / total:10,.0f} /s   ({n:,} entries: submit_many {n / t_submit:,.0f}/s, "
        f"integrate {n / t_integrate:,.0f}/s; building Entry objects {n / t_make:,.0f}/s not counted)"
    )
    return {"bulk_appends_per_s": n / total, "submit_many_per_s": n / t_submit, "integrate_per_s": n / t_integrate}


async def proofs(engine: AsyncEngine, ledger: Ledger, n: int, count: int) -> dict:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    rnd = random.Random(7)
    async with sessions() as s:
        cp = await ledger.latest_checkpoint(s)
        assert cp is not None and cp.size == n
        for _ in range(50):  # warm up
            await ledger.inclusion_proof(s, rnd.randrange(n), n)
        times, lens = [], []
        for _ in range(count):
            i = rnd.randrange(n)
            t0 = time.perf_counter()
            proof = await ledger.inclusion_proof(s, i, n)
            times.append(time.perf_counter() - t0)
            lens.append(len(proof))
            if len(times) <= 20:
                (e,) = await ledger.entries(s, i, i + 1)
                assert merkle.verify_inclusion(e.leaf_hash, i, n, proof, cp.root)
        print(
            f"  inclusion proof   {statistics.mean(times) * 1e3:10.2f} ms mean, p50 {pct(times, 50) * 1e3:.2f} ms, "
            f"p99 {pct(times, 99) * 1e3:.2f} ms   ({count} random indexes at size {n:,}; {statistics.mean(lens):.1f} hashes, 1 query)"
        )
        out = {"inclusion_mean_ms": statistics.mean(times) * 1e3, "inclusion_p50_ms": pct(times, 50) * 1e3,
               "inclusion_p99_ms": pct(times, 99) * 1e3, "proof_size": n}
        times = []
        for _ in range(count // 2):
            m = rnd.randrange(1, n)
            t0 = time.perf_counter()
            await ledger.consistency_proof(s, m, n)
            times.append(time.perf_counter() - t0)
        print(f"  consistency proof {statistics.mean(times) * 1e3:10.2f} ms mean, p99 {pct(times, 99) * 1e3:.2f} ms")
        return {**out, "consistency_mean_ms": statistics.mean(times) * 1e3, "consistency_p99_ms": pct(times, 99) * 1e3}


async def full_verify(engine: AsyncEngine, ledger: Ledger, n: int) -> dict:
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as s:
        t0 = time.perf_counter()
        rep = await verify_log(s, ledger.verifier_key, origin=ledger.origin)
        elapsed = time.perf_counter() - t0
    assert rep.ok, rep
    print(f"  full verify       {n / elapsed:10,.0f} entries/s   ({elapsed:.1f}s: {rep.nodes:,} nodes, {rep.checkpoints} checkpoints)")
    return {"verify_per_s": n / elapsed, "verify_entries": n}


async def storage(engine: AsyncEngine, url: str, path: Path | None) -> None:
    if path is not None:
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        print(f"  storage           {size / 2**20:10,.0f} MiB (SQLite file + WAL)")
        return
    async with engine.connect() as conn:
        size = await conn.scalar(
            text(f"SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '{SCHEMA}' AND c.relkind = 'r'")
        )
    print(f"  storage           {int(size) / 2**20:10,.0f} MiB (tables + indexes)")


async def run(label: str, url: str, args: argparse.Namespace, path: Path | None = None) -> dict:
    print(f"\n{label}")
    engine = await make_engine(url)
    try:
        if url.startswith("postgresql"):
            async with engine.connect() as conn:
                print("  " + (await conn.scalar(text("SELECT version()"))).split(",")[0])
        ledger = Ledger(NoteSigner.generate("swx.bench/ledger"))
        out = {} if "appends" in args.skip else {"live_appends_per_s": await live_appends(engine, ledger, args.appends, args.concurrency)}
        out.update(await bulk_load(engine, ledger, args.entries))
        if "proofs" not in args.skip:
            out.update(await proofs(engine, ledger, args.entries, args.proofs))
        for _ in range(args.verify_runs):
            out.update(await full_verify(engine, ledger, args.entries))
        await storage(engine, url, path)
        return out
    finally:
        if url.startswith("postgresql") and not args.keep:
            async with engine.begin() as conn:
                await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await engine.dispose()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000, help="bulk-loaded log size for proofs and verify")
    ap.add_argument("--appends", type=int, default=5_000, help="entries in the live-append phase")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--proofs", type=int, default=2_000)
    ap.add_argument("--database-url", help="also run on this PostgreSQL database (postgresql+asyncpg://...)")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--keep", action="store_true", help=f"keep the PostgreSQL schema {SCHEMA} afterwards")
    ap.add_argument("--skip", action="append", default=[], choices=("appends", "proofs"), help="leave out a phase (repeatable)")
    ap.add_argument("--verify-runs", type=int, default=1, help="run the full verify this many times (the last one is reported)")
    ap.add_argument("--json", help="also write the figures to this file (bench/run reads them)")
    args = ap.parse_args()
    results: dict[str, dict] = {}
    print(f"swx ledger bench: {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, SQLite {sqlite3.sqlite_version}")
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="swx-ledger-bench-") as tmp:
            path = Path(tmp) / "ledger.db"
            results["sqlite"] = await run("SQLite (aiosqlite, WAL, synchronous=FULL)", f"sqlite+aiosqlite:///{path}", args, path)
    if args.database_url:
        results["postgresql"] = await run("PostgreSQL (asyncpg)", args.database_url, args)
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
