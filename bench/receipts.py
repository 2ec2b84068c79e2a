"""Regulators' receipts ingested through ``POST /v1/regulators/receipts``: return nodes per second (issue 13).

    .venv/bin/python bench/receipts.py [--seconds 20] [--connections 64] [--nodes 1,20]
                                       [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/swx_bench]

``swx serve`` (as the other benches start it: ``common.Server``) with ``SWX_DISPATCH=false``, so that
nothing but the posted receipts answers the orders. On a freshly reset bench database:

1. a firm and the enterprises its orders name are registered, and the operator issues a customs key
   (``POST /v1/regulators/customs/keys``; the stand-ins' own keys stay as they are);
2. orders are filed as in the intake bench (distinct single-order CEB311 filings, wrk): each is
   stored with its customs delivery waiting in the outbox (routed to customs, as a receipt requires);
3. the orders still unanswered are read from the database (head guid and keys), and for each variant
   customs receipts are built as the customs stand-in builds them (``schemas.receipts.receipt_xml``:
   a CEB312Message, ``returnStatus`` 120, one ``OrderReturn`` per order, posted bare as
   application/xml) with 1 or 20 return nodes per message, each order answered once;
4. per variant, first a warm-up of a few seconds on orders of its own, whose rate sizes the orders
   the window needs (× 1.4), then those orders are filed;
5. the window: the lean asyncio client of ``bench/load.py`` (raw HTTP/1.1 over 64 keep-alive
   connections, uvloop, pre-built requests), each receipt posted once, for ``--seconds`` s; a message
   counts once answered 201; nodes/s = 201s × nodes per message / elapsed; latency percentiles per
   message. Not wrk: wrk runs for its whole ``-d`` whatever happens, and a wrk thread that runs out of
   bodies stops with its other connections' answers unread, so a set that runs out early would be
   miscounted; this client's connections stop one by one when the set runs out, each after its last
   answer, and the elapsed time ends with the last answer. Its CPU is this process's, reported;
6. checks: receipt messages stored (``regulator_receipts``) = 201s (at most one per connection more:
   in flight at the stop); customs verdicts stored = nodes; every node has its ``receipt.received``
   ledger entry once the sequencer has caught up (how long after the last answer: reported).

With too few orders prepared (the warm-up misjudged), the window ends when they run out
(``exhausted``, said in the log and the notes) and the rate is over the time it did run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import (
    DEFAULT_PG,
    CpuWindow,
    Server,
    add_server_args,
    cpu_line,
    log,
    pg_dsn,
    register_firm,
)

PATH = "/v1/regulators/receipts"
RECEIVED = '"kind":"receipt.received"'


async def unanswered_orders(url: str, limit: int) -> list[dict[str, str]]:
    """Stored orders customs has not answered yet (oldest first): the fields an OrderReturn echoes."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT v.head_guid, d.business_key, d.parties FROM documents d "
            "JOIN document_versions v ON v.document_id = d.id AND v.version = d.version "
            "WHERE d.kind = 'order' AND d.status = '2' "
            "AND NOT EXISTS (SELECT 1 FROM verdicts x WHERE x.document_id = d.id AND x.regulator = 'customs') "
            "ORDER BY d.id LIMIT $1", limit)
    finally:
        await conn.close()
    out = []
    for r in rows:
        ebp, order_no = r["business_key"].split("|", 1)
        parties = json.loads(r["parties"]) if isinstance(r["parties"], str) else r["parties"]
        out.append({"guid": r["head_guid"], "ebpCode": ebp, "ebcCode": parties.get("ebcCode", ""), "orderNo": order_no})
    return out


def write_receipts(path: Path, heads: list[dict[str, str]], nodes: int) -> int:
    """Receipt messages of ``nodes`` OrderReturn nodes each over ``heads`` (each order once), as records
    ``<length>\\n<body>``; returns the number of messages (a short last one is left out)."""
    from schemas.catalog import FILED
    from schemas.receipts import DocumentReturn, document_fields, receipt_xml

    order = FILED["311"]
    n = 0
    with open(path, "wb") as f:
        for i in range(0, len(heads) - nodes + 1, nodes):
            returns = [DocumentReturn(document_fields(order, h, None), "120", "入库成功 (bench)") for h in heads[i:i + nodes]]
            body = receipt_xml(order, returns).encode("utf-8")
            f.write(b"%d\n" % len(body))
            f.write(body)
            n += 1
    return n


async def counts(url: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        return {
            "receipts": await conn.fetchval("SELECT count(*) FROM regulator_receipts WHERE regulator = 'customs'"),
            "verdicts": await conn.fetchval("SELECT count(*) FROM verdicts WHERE regulator = 'customs'"),
            "ledger_size": await conn.fetchval("SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries"),
        }
    finally:
        await conn.close()


async def received_in_ledger(url: str, since_idx: int) -> int:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE idx >= $1 AND position(convert_to($2, 'UTF8') in entry) > 0",
            since_idx, RECEIVED)
    finally:
        await conn.close()


def file_orders(server: Server, key: str, parties, n: int, tag: str, workdir: Path, connections: int = 32) -> int:
    """File ``n`` distinct single-order filings (the Python client, which stops when the set runs out);
    returns how many were stored."""
    import load

    if n <= 0:
        return 0
    path = workdir / f"receipt-orders-{tag}.bodies"
    load.write_orders(path, n, parties, tag)
    t = time.perf_counter()
    before = asyncio.run(load.db_counts(server.url))["messages"]
    res = load.run_python(server.base, key, path, 3600, connections)
    stored = asyncio.run(load.settle(server.url)) - before
    log(f"filed {stored:,} orders for receipts in {time.perf_counter() - t:.1f}s (statuses {res['statuses']})")
    return stored


def post_receipts(server: Server, customs_key: str, path: Path, nodes: int, seconds: float, connections: int,
                  measured: bool = True) -> dict:
    """One window of receipts posted from ``path`` (each once; the window ends early when they run out),
    with its checks."""
    import load

    url = server.url
    before = asyncio.run(counts(url))
    cpu = CpuWindow(server.pid, server.regulators_pid).begin()
    res = load.run_python(server.base, customs_key, path, seconds, connections, path=PATH)
    shares = cpu.end(res.get("generator_cpu_s"))
    t_end = time.perf_counter()
    catch_up = asyncio.run(load.ledger_catch_up(url))
    asyncio.run(load.settle(url))
    deadline = time.perf_counter() + 30
    while True:  # a receipt in flight at the stop may still be stored: count until entries and verdicts agree
        asyncio.run(load.ledger_catch_up(url))
        after = asyncio.run(counts(url))
        in_ledger = asyncio.run(received_in_ledger(url, before["ledger_size"]))
        if in_ledger == after["verdicts"] - before["verdicts"] or time.perf_counter() > deadline:
            break
        time.sleep(0.5)
    ok = res["statuses"].get(201, 0)
    stored = after["receipts"] - before["receipts"]
    verdicts = after["verdicts"] - before["verdicts"]
    out = {
        **res, "nodes_per_message": nodes, "connections": connections, "messages_ok": ok, "nodes_ok": ok * nodes,
        "messages_per_s": ok / res["elapsed"], "nodes_per_s": ok * nodes / res["elapsed"], "cpu": shares,
        "stored": stored, "stored_ok": ok <= stored <= ok + connections, "verdicts": verdicts,
        "verdicts_ok": verdicts == stored * nodes, "in_ledger": in_ledger, "ledger_ok": in_ledger == verdicts,
        "ledger_catch_up_s": catch_up, "measured_after": time.perf_counter() - t_end,
    }
    if measured:
        log(f"receipts, {nodes} node(s) per message: {ok:,} messages in {res['elapsed']:.1f}s = {out['nodes_per_s']:,.0f} "
            f"nodes/s ({out['messages_per_s']:,.0f} messages/s); p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms; "
            f"statuses {res['statuses']}{'; RAN OUT of receipts' if res.get('exhausted') else ''}; stored {stored:,} "
            f"({'ok' if out['stored_ok'] else 'MISMATCH'}), verdicts {verdicts:,} ({'ok' if out['verdicts_ok'] else 'MISMATCH'}), "
            f"ledger {'complete' if out['ledger_ok'] else 'INCOMPLETE'} {catch_up * 1000:.0f} ms after the last answer; "
            f"{cpu_line(shares)}")
    return out


def measure(server: Server, key: str, parties, *, seconds: float, connections: int, variants: tuple[int, ...],
            workdir: Path, warmup: float = 3.0, margin: float = 1.4, max_nodes_per_s: float = 15000) -> dict:
    """Per variant: orders for a warm-up, the warm-up (its rate sizes what follows), orders for the window,
    the window."""
    r = httpx.post(f"{server.base}/v1/regulators/customs/keys", headers=server.op(), timeout=30)
    r.raise_for_status()
    customs_key = r.json()["apiKey"]
    out: dict = {"variants": {}, "warmup_nodes_per_s": {}, "orders_prepared": {}, "configuration": server.describe()}
    for n in variants:
        warm = max(4 * connections * n, 1500)
        file_orders(server, key, parties, warm, f"RW{n}", workdir)
        heads = asyncio.run(unanswered_orders(server.url, warm))
        write_receipts(workdir / f"receipts-warm-{n}.bodies", heads, n)
        res = post_receipts(server, customs_key, workdir / f"receipts-warm-{n}.bodies", n, warmup, connections, measured=False)
        rate = out["warmup_nodes_per_s"][n] = res["nodes_per_s"]
        need = int(min(max_nodes_per_s, max(rate * margin, 100)) * seconds) + 2 * connections * n
        log(f"receipts warm-up, {n} node(s) per message: {rate:,.0f} nodes/s over {res['elapsed']:.1f}s, statuses "
            f"{res['statuses']}; filing {need:,} orders for the {seconds:g} s window")
        out["orders_prepared"][n] = file_orders(server, key, parties, need, f"RM{n}", workdir)
        heads = asyncio.run(unanswered_orders(server.url, need))
        messages = write_receipts(workdir / f"receipts-{n}.bodies", heads, n)
        log(f"{messages:,} receipt messages of {n} node(s) over {len(heads):,} orders")
        out["variants"][n] = post_receipts(server, customs_key, workdir / f"receipts-{n}.bodies", n, seconds, connections)
    return out


def run(url: str, *, seconds: float, connections: int, variants: tuple[int, ...] = (1, 20), workers: int = 1, external_regulators: bool = False, workdir: Path | None = None) -> dict:
    import load

    workdir = workdir or Path(tempfile.mkdtemp(prefix="swx-receipts-"))
    parties = load.bench_parties()
    with Server(url, env={"SWX_DISPATCH": "false"}, workers=workers, external_regulators=external_regulators) as server:
        key = register_firm(server)
        load.register_parties(server, parties)
        return measure(server, key, parties, seconds=seconds, connections=connections, variants=variants, workdir=workdir)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=DEFAULT_PG)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--nodes", default="1,20", help="return nodes per receipt message, one window each")
    add_server_args(p)
    args = p.parse_args()
    res = run(args.database_url, seconds=args.seconds, connections=args.connections,
              variants=tuple(int(v) for v in args.nodes.split(",")), workers=args.workers,
              external_regulators=args.external_regulators)
    print(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
