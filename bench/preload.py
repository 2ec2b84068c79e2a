"""Pre-load the bench database with N filings as swx would have stored them, fast.

    .venv/bin/python bench/preload.py --filings 1000000 [--database-url ...]   (standalone: reset, template, load)

How: a running ``swx serve`` takes one real single-order filing (the *template*) and carries it all
the way -- stored, routed to customs, delivered, customs' 120 verdict back, forwarded, and its six
ledger entries sequenced. The server is stopped, and the template's rows are cloned N times:

* business tables, in PostgreSQL (``INSERT ... SELECT ... FROM generate_series``): ``messages``,
  ``documents``, ``document_versions``, ``document_parties``, ``receipts``, ``deliveries``,
  ``verdicts``, ``regulator_receipts``. Every clone has its own message guid, document guid, order
  number (``PL`` + 13 digits), receipt guid, digests (SHA-256 of its own bytes) and ids;
* the ledger, in Python with the ledger's own code (``ledger.merkle.Frontier``, ``leaf_hash``,
  ``sign_checkpoint`` with the server's key): the template's six entries per clone with the clone's
  values, their leaves and every complete subtree node, one signed checkpoint per 5,000 entries (the
  server's batch), written with COPY; the topic index in SQL from the template's topics.

Secondary indexes, unique and foreign-key constraints of the loaded tables are dropped first and
built again after (same definitions, read from the catalogue), then VACUUM ANALYZE and CHECKPOINT,
so the measurement that follows does not pay for the load. (Freshly built indexes are a little more
compact than ones grown by inserts; that favours the pre-loaded database slightly.)
The result passes ``swx ledger verify``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from common import (
    DEFAULT_PG,
    FIRM_CODE,
    FIRM_DXP,
    FIRM_NAME,
    ROOT,
    Server,
    log,
    pg_dsn,
    register_firm,
)

from ledger import merkle
from ledger.checkpoint import load_or_create_key, sign_checkpoint
from schemas.builder import MessageBuilder, Party

TEMPLATE_ORDER = "SOT000000000000"
CHECKPOINT_EVERY = 5000
TABLES = ("messages", "documents", "document_versions", "document_parties", "receipts", "deliveries", "verdicts",
          "regulator_receipts", "ledger_entries", "ledger_nodes", "ledger_topics", "ledger_checkpoints")


def clone_guid(prefix: str, g: int) -> str:
    return f"{prefix}0000000-0000-4000-8000-{g:012X}"


def clone_order(g: int) -> str:
    return f"PL{g:013d}"


def _sql_guid(prefix: str) -> str:
    return f"'{prefix}0000000-0000-4000-8000-' || lpad(upper(to_hex(g)), 12, '0')"


SQL_ORDER = "'PL' || lpad(g::text, 13, '0')"


# --- the template ------------------------------------------------------------------------------------


def make_template(server: Server, key: str, parties) -> dict:
    """File the template order and wait until its whole flow (delivery, verdict, ledger) is done."""
    b = MessageBuilder(99)
    body = b.message("311", [b.order(parties, lines=2, order_no=TEMPLATE_ORDER)],
                     sender=Party(FIRM_CODE, FIRM_NAME, FIRM_DXP))
    r = httpx.post(server.base + "/v1/filings", content=body, timeout=30,
                   headers={"Authorization": f"Bearer {key}", "Content-Type": "application/xml"})
    r.raise_for_status()
    guid = r.json()["guid"]
    return asyncio.run(_wait_template(server.url, guid))


async def _wait_template(url: str, guid: str) -> dict:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = await conn.fetchval(
                "SELECT count(*) FROM deliveries d JOIN messages m ON m.id = d.message_id "
                "WHERE m.guid = $1 AND d.state = 'acknowledged'", guid)
            pending = await conn.fetchval("SELECT count(*) FROM ledger_pending")
            entries = await conn.fetchval(
                "SELECT count(*) FROM ledger_entries WHERE position(convert_to($1, 'UTF8') in entry) > 0 "
                "OR position(convert_to($2, 'UTF8') in entry) > 0", TEMPLATE_ORDER, guid)
            if done and not pending and entries >= 6:
                break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError("the template filing did not complete its flow within 60 s")
        await asyncio.sleep(0.5)
        return {"guid": guid}
    finally:
        await conn.close()


# --- the load ------------------------------------------------------------------------------------------


async def _template_facts(conn, guid: str) -> dict:
    m = await conn.fetchrow("SELECT id, raw, digest FROM messages WHERE guid = $1", guid)
    d = await conn.fetchrow("SELECT d.id FROM documents d JOIN document_versions v ON v.document_id = d.id "
                            "WHERE v.message_id = $1", m["id"])
    head_guid = await conn.fetchval("SELECT head_guid FROM document_versions WHERE message_id = $1", m["id"])
    delivery = await conn.fetchval("SELECT id FROM deliveries WHERE message_id = $1", m["id"])
    rr = await conn.fetchrow("SELECT id, guid, raw, digest FROM regulator_receipts "
                             "WHERE position(convert_to($1, 'UTF8') in raw) > 0", TEMPLATE_ORDER)
    entries = await conn.fetch("SELECT idx, entry FROM ledger_entries WHERE position(convert_to($1, 'UTF8') in entry) > 0 "
                               "OR position(convert_to($2, 'UTF8') in entry) > 0 ORDER BY idx", TEMPLATE_ORDER, guid)
    return {"message": m["id"], "raw": bytes(m["raw"]), "digest": m["digest"], "document": d["id"], "head_guid": head_guid,
            "delivery": delivery, "rr_id": rr["id"], "rr_guid": rr["guid"], "rr_raw": bytes(rr["raw"]),
            "rr_digest": rr["digest"], "guid": guid, "entries": [(r["idx"], bytes(r["entry"])) for r in entries]}


async def _columns(conn, table: str) -> list[str]:
    return [r["column_name"] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
        "ORDER BY ordinal_position", table)]


async def _clone(conn, table: str, where: str, overrides: dict[str, str], n: int, lateral: str = "") -> None:
    cols = await _columns(conn, table)
    keep = [c for c in cols if c != "id" or "id" in overrides]
    exprs = [overrides.get(c, f"t.{c}") for c in keep]
    sql = (f"INSERT INTO {table} ({', '.join(keep)}) SELECT {', '.join(exprs)} "
           f"FROM generate_series(1, {n}) AS g CROSS JOIN (SELECT * FROM {table} WHERE {where}) AS t {lateral}")
    await conn.execute(sql)


def _txt_replace(expr: str, pairs: list[tuple[str, str]]) -> str:
    for old, new in pairs:
        expr = f"replace({expr}, '{old}', {new})"
    return expr


async def _drop_constraints(conn) -> list[str]:
    """Drop FKs, unique/PK constraints and plain indexes of the loaded tables; returns how to rebuild them."""
    tables = ", ".join(f"'{t}'" for t in TABLES)
    cons = await conn.fetch(
        f"SELECT c.conname, c.contype::text AS contype, r.relname, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c "
        f"JOIN pg_class r ON r.oid = c.conrelid LEFT JOIN pg_class f ON f.oid = c.confrelid "
        f"WHERE c.contype IN ('f', 'u', 'p') AND (r.relname IN ({tables}) OR f.relname IN ({tables})) "
        f"AND r.relnamespace = 'public'::regnamespace")
    idx = await conn.fetch(
        f"SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' AND i.tablename IN ({tables}) "
        f"AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)")
    order = {"f": 0, "u": 1, "p": 2}
    rebuild = []
    for c in sorted(cons, key=lambda c: order[c["contype"]]):
        await conn.execute(f'ALTER TABLE {c["relname"]} DROP CONSTRAINT "{c["conname"]}"')
    for i in idx:
        await conn.execute(f'DROP INDEX "{i["indexname"]}"')
        rebuild.append(i["indexdef"])
    for c in sorted(cons, key=lambda c: -order[c["contype"]]):
        rebuild.append(f'ALTER TABLE {c["relname"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}')
    return rebuild


async def load(url: str, guid: str, n: int, key_path: str, origin: str = "swx.example/ledger") -> dict:
    """Clone the template filing ``n`` times (see module doc). The server must be stopped."""
    import asyncpg

    t_start = time.perf_counter()
    conn = await asyncpg.connect(pg_dsn(url))
    timings: dict[str, float] = {}
    try:
        await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '1GB'; SET work_mem = '256MB'")
        f = await _template_facts(conn, guid)
        ids = {t: await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {t}") for t in ("messages", "documents", "document_versions", "deliveries")}
        size0 = await conn.fetchval("SELECT coalesce(max(size), 0) FROM ledger_checkpoints")
        ledger_max = await conn.fetchval("SELECT coalesce(max(idx), -1) FROM ledger_entries")
        if ledger_max + 1 != size0 or await conn.fetchval("SELECT count(*) FROM ledger_pending"):
            raise RuntimeError("the ledger is not fully sequenced; stop the server cleanly first")
        t = time.perf_counter()
        rebuild = await _drop_constraints(conn)
        timings["drop indexes"] = time.perf_counter() - t

        G, H, RG, O = _sql_guid("B"), _sql_guid("C"), _sql_guid("D"), SQL_ORDER
        subst = [(f["guid"], G), (f["head_guid"], H), (TEMPLATE_ORDER, O)]
        mo, do, dvo, delo = ids["messages"], ids["documents"], ids["document_versions"], ids["deliveries"]
        raw_new = "convert_to(" + _txt_replace("convert_from(t.raw, 'UTF8')", subst) + ", 'UTF8')"
        rr_new = "convert_to(" + _txt_replace("convert_from(t.raw, 'UTF8')", [(f["rr_guid"], RG), (TEMPLATE_ORDER, O)]) + ", 'UTF8')"
        t = time.perf_counter()
        async with conn.transaction():
            await _clone(conn, "messages", f"id = {f['message']}", {
                "id": f"{mo} + g", "guid": G, "raw": "x.raw", "digest": "encode(sha256(x.raw), 'hex')",
                "answer": _txt_replace("t.answer::text", subst) + "::json", "answer_xml": _txt_replace("t.answer_xml", subst),
            }, n, lateral=f"CROSS JOIN LATERAL (SELECT {raw_new} AS raw) AS x")
            timings["messages"] = time.perf_counter() - t
            await _clone(conn, "documents", f"id = {f['document']}", {
                "id": f"{do} + g", "business_key": _txt_replace("t.business_key", subst),
                "order_ref": _txt_replace("t.order_ref", subst), "topics": _txt_replace("t.topics", subst),
            }, n)
            await _clone(conn, "document_versions", f"message_id = {f['message']}", {
                "id": f"{dvo} + g", "document_id": f"{do} + g", "message_id": f"{mo} + g", "head_guid": H,
                "xml": _txt_replace("t.xml", subst),
            }, n)
            await _clone(conn, "document_parties", f"document_id = {f['document']}", {"document_id": f"{do} + g"}, n)
            await _clone(conn, "receipts", f"message_id = {f['message']} OR document_id = {f['document']}", {
                "message_id": f"CASE WHEN t.message_id IS NULL THEN NULL ELSE {mo} + g END",
                "document_id": f"CASE WHEN t.document_id IS NULL THEN NULL ELSE {do} + g END",
                "xml": _txt_replace("t.xml", subst),
            }, n)
            await _clone(conn, "deliveries", f"message_id = {f['message']}", {
                "id": f"{delo} + g", "message_id": f"{mo} + g", "message_guid": G, "topics": _txt_replace("t.topics", subst),
            }, n)
            await _clone(conn, "verdicts", f"document_id = {f['document']}", {"document_id": f"{do} + g"}, n)
            await _clone(conn, "regulator_receipts", f"id = {f['rr_id']}", {
                "guid": RG, "raw": "x.raw", "digest": "encode(sha256(x.raw), 'hex')",
                "answer": _txt_replace("t.answer::text", [(f["rr_guid"], RG), (TEMPLATE_ORDER, O)]) + "::json",
            }, n, lateral=f"CROSS JOIN LATERAL (SELECT {rr_new} AS raw) AS x")
            for table in ("messages", "documents", "document_versions", "deliveries", "receipts", "verdicts", "regulator_receipts"):
                await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        timings["business tables"] = time.perf_counter() - t

        t = time.perf_counter()
        k = await _load_ledger(conn, f, n, size0, key_path, origin, delo)
        timings["ledger entries+nodes"] = time.perf_counter() - t
        t = time.perf_counter()
        topic_sql = _txt_replace("t.topic", [(TEMPLATE_ORDER, O)])
        await conn.execute(
            f"INSERT INTO ledger_topics (topic, idx) SELECT {topic_sql}, {size0} + (g - 1) * {k} + t.pos "
            f"FROM generate_series(1, {n}) AS g CROSS JOIN (SELECT lt.topic, u.pos FROM ledger_topics lt "
            f"JOIN unnest($1::bigint[], $2::int[]) AS u(idx, pos) ON u.idx = lt.idx) AS t",
            [i for i, _ in f["entries"]], list(range(len(f["entries"]))))
        timings["ledger topics"] = time.perf_counter() - t

        t = time.perf_counter()
        for stmt in rebuild:
            await conn.execute(stmt)
        timings["rebuild indexes"] = time.perf_counter() - t
        t = time.perf_counter()
        for table in TABLES:
            await conn.execute(f"VACUUM ANALYZE {table}")
        await conn.execute("CHECKPOINT")
        timings["vacuum+checkpoint"] = time.perf_counter() - t
        # the clones' digests agree with what the ledger says
        sample = await conn.fetchrow("SELECT guid, digest FROM messages WHERE id = $1", mo + min(n, 7))
        assert sample["digest"] == _clone_digest(f, int(sample["guid"][-12:], 16)), "digest of a clone differs from the ledger's"
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        return {"filings": n, "entries": k * n, "seconds": time.perf_counter() - t_start, "timings": timings,
                "database_bytes": size, "ledger_size": size0 + k * n}
    finally:
        await conn.close()


def _clone_digest(f: dict, g: int) -> str:
    return hashlib.sha256(_clone_raw(f, g)).hexdigest()


def _clone_raw(f: dict, g: int) -> bytes:
    return (f["raw"].replace(f["guid"].encode(), clone_guid("B", g).encode())
            .replace(f["head_guid"].encode(), clone_guid("C", g).encode())
            .replace(TEMPLATE_ORDER.encode(), clone_order(g).encode()))


async def _load_ledger(conn, f: dict, n: int, size0: int, key_path: str, origin: str, delo: int) -> int:
    """Append the template's entries for every clone, with nodes and checkpoints; returns entries per clone."""
    signer = load_or_create_key(key_path, origin)
    wanted = merkle.Frontier.node_ids(size0)
    rows = await conn.fetch("SELECT level, idx, hash FROM ledger_nodes WHERE (level, idx) IN (SELECT * FROM unnest($1::smallint[], $2::bigint[]))",
                            [lv for lv, _ in wanted], [ix for _, ix in wanted])
    frontier = merkle.Frontier.from_nodes(size0, {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows})
    root = await conn.fetchval("SELECT root FROM ledger_checkpoints WHERE size = $1", size0)
    if root is not None and frontier.root() != bytes(root):
        raise RuntimeError("stored right edge does not match the latest checkpoint")
    template = [e for _, e in f["entries"]]
    k = len(template)
    old_delivery = f'"delivery":{f["delivery"]},'.encode()
    now = datetime.now(UTC)
    entry_rows: list[tuple] = []
    node_rows: list[tuple] = []
    cp_rows: list[tuple] = []

    async def flush() -> None:
        if entry_rows:
            await conn.copy_records_to_table("ledger_entries", records=entry_rows, columns=("idx", "entry", "leaf_hash", "created_at"))
            await conn.copy_records_to_table("ledger_nodes", records=node_rows, columns=("level", "idx", "hash"))
        if cp_rows:
            await conn.copy_records_to_table("ledger_checkpoints", records=cp_rows, columns=("size", "root", "note", "created_at"))
        entry_rows.clear(), node_rows.clear(), cp_rows.clear()

    digest_t, rr_digest_t = f["digest"].encode(), f["rr_digest"].encode()
    guid_t = f["guid"].encode()
    order_t = TEMPLATE_ORDER.encode()
    for g in range(1, n + 1):
        digest = _clone_digest(f, g).encode()
        rr_raw = f["rr_raw"].replace(f["rr_guid"].encode(), clone_guid("D", g).encode()).replace(order_t, clone_order(g).encode())
        rr_digest = hashlib.sha256(rr_raw).hexdigest().encode()
        guid, order = clone_guid("B", g).encode(), clone_order(g).encode()
        delivery = f'"delivery":{delo + g},'.encode()
        for e in template:
            data = (e.replace(guid_t, guid).replace(order_t, order).replace(digest_t, digest)
                    .replace(rr_digest_t, rr_digest).replace(old_delivery, delivery))
            leaf = merkle.leaf_hash(data)
            entry_rows.append((frontier.size, data, leaf, now))
            node_rows.extend(frontier.append(leaf))
            if frontier.size % CHECKPOINT_EVERY == 0:
                root = frontier.root()
                cp_rows.append((frontier.size, root, sign_checkpoint(signer, origin, frontier.size, root), now))
        if len(entry_rows) >= 60000:
            await flush()
    if frontier.size % CHECKPOINT_EVERY:
        root = frontier.root()
        cp_rows.append((frontier.size, root, sign_checkpoint(signer, origin, frontier.size, root), now))
    await flush()
    return k


def verify_cli(server: Server) -> dict:
    """``swx ledger verify`` on the server's database, as the operator runs it: wall time and entries/s."""
    import subprocess

    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "ledger", "verify"], cwd=ROOT, env=server.env(),
                       capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t
    out = (r.stdout + r.stderr).strip()
    import re

    m = re.search(r"ledger OK: (\d+) entries", out)
    size = int(m.group(1)) if m else 0
    return {"ok": r.returncode == 0, "entries": size, "seconds": elapsed, "rate": size / elapsed if size else 0.0, "output": out[-300:]}


def main() -> None:
    from load import bench_parties, register_parties

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=DEFAULT_PG)
    p.add_argument("--filings", type=int, default=100_000)
    p.add_argument("--verify", action="store_true", help="run `swx ledger verify` afterwards")
    args = p.parse_args()
    parties = bench_parties()
    server = Server(args.database_url, key_dir=tempfile.mkdtemp(prefix="swx-preload-"))
    with server:
        key = register_firm(server)
        register_parties(server, parties)
        tmpl = make_template(server, key, parties)
    res = asyncio.run(load(args.database_url, tmpl["guid"], args.filings, server.key_path))
    log(f"pre-loaded {res['filings']:,} filings ({res['entries']:,} ledger entries) in {res['seconds']:.0f}s; "
        f"database {res['database_bytes'] / 2**30:.1f} GiB; {', '.join(f'{k} {v:.0f}s' for k, v in res['timings'].items())}")
    if args.verify:
        v = verify_cli(server)
        log(f"swx ledger verify: {'OK' if v['ok'] else 'FAILED'} {v['entries']:,} entries in {v['seconds']:.1f}s = {v['rate']:,.0f}/s")
        print(v["output"])


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
