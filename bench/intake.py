"""Intake benchmark: filings per second through HTTP, and swx's validation step against bare lxml.

    .venv/bin/python bench/intake.py [--filings 2000] [--concurrency 32] [--database-url URL]
                                     [--direction import|export|both]

Starts ``swx serve`` in a subprocess on a fresh database (a temporary SQLite file unless
``--database-url`` names a PostgreSQL database, whose ``public`` schema is then reset), registers a
firm, files single-document messages concurrently over HTTP, and prints throughput and latency.
Then it times, in this process and on one thread, bare lxml parse + schema validation against
swx's own validation step (safe parse, envelope check, schema, rules) on the same messages.

``--direction``: import files orders (311, two lines); export files the four documents of export
declarations in turn (303 order, 403 money received, 505 waybill, 603 signed list) and, to compare
like with like, import then files its four (311, 411, 511, 621). ``both`` runs the two mixes on fresh
servers and prints export's rate against import's (target: within 20 %).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schemas.builder import MessageBuilder, Party  # noqa: E402
from schemas.loader import ceb_schema  # noqa: E402

TOKEN = "bench-operator-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_postgres(url: str) -> None:
    import asyncpg

    async def reset() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        await conn.close()

    asyncio.run(reset())


def _messages(n: int, firm: Party, seed: int = 7, mix: str = "orders") -> tuple[list[bytes], list[dict]]:
    """``n`` single-document messages, and the registrations of the enterprises they name.

    ``mix``: "orders" (import orders), or "import" / "export": the four documents of a declaration in turn."""
    if mix == "export":
        from schemas.export_builder import ExportBuilder

        eb = ExportBuilder(seed)
        parties = eb.parties(foreign_platform=False)
        out: list[bytes] = []
        while len(out) < n:
            decl = eb.declaration(parties, order_type="E", statistics_flag="B", lines=2, collection=True)
            out += [eb.message(code, [decl[kind]], sender=firm) for code, kind in (
                ("303", "order"), ("403", "collection"), ("505", "waybill"), ("603", "inventory"))]
        return out[:n], parties.registrations()
    b = MessageBuilder(seed)
    parties = b.parties()
    if mix == "import":
        out = []
        while len(out) < n:
            decl = b.declaration(parties, lines=2)
            out += [b.message(code, [decl[kind]], sender=firm) for code, kind in (
                ("311", "order"), ("411", "payment"), ("511", "waybill"), ("621", "inventory"))]
        return out[:n], parties.registrations()
    return [b.message("311", [b.order(parties, lines=2)], sender=firm) for _ in range(n)], parties.registrations()


async def _file_all(base: str, key: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], dict]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(bodies)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/xml"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def worker() -> None:
            for body in queue:
                t = time.perf_counter()
                r = await client.post("/v1/filings", content=body, headers=headers)
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, latencies, statuses


def bench_http(args: argparse.Namespace, mix: str = "orders") -> float:
    tmp = tempfile.mkdtemp(prefix="swx-bench-")
    url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
    if url.startswith("postgresql"):
        _reset_postgres(url)
    port = _free_port()
    # intake alone: no dispatcher, no stand-ins answering (bench/run's rows measure the whole loop)
    env = {**os.environ, "SWX_DATABASE_URL": url, "SWX_OPERATOR_TOKEN": TOKEN, "SWX_LOG_LEVEL": "WARNING",
           "SWX_LEDGER_KEY_PATH": f"{tmp}/ledger.key", "SWX_DISPATCH": "false", "SWX_MOCK_REGULATORS": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--workers", str(args.workers)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        code = "3301960AB1"
        r = httpx.post(base + "/v1/enterprises", headers={"Authorization": f"Bearer {TOKEN}"},
                       json={"code": code, "name": "基准测试电子商务有限公司", "roles": ["ebp", "ebc", "agent"],
                             "dxpId": "DXPENT3301960AB1"})
        r.raise_for_status()
        firm = Party(code, "基准测试电子商务有限公司", "DXPENT3301960AB1")
        bodies, registrations = _messages(args.filings, firm, mix=mix)
        for body in registrations:
            httpx.post(base + "/v1/enterprises", headers={"Authorization": f"Bearer {TOKEN}"}, json=body).raise_for_status()
        asyncio.run(_file_all(base, r.json()["apiKey"], bodies[: min(100, len(bodies))], args.concurrency))  # warm-up
        elapsed, lat, statuses = asyncio.run(_file_all(base, r.json()["apiKey"], bodies[100:], args.concurrency))
        lat.sort()
        n = len(lat)
        print(f"database        {url.split('://')[0]}  workers={args.workers}  concurrency={args.concurrency}")
        what = {"orders": "single-order messages", "import": "import declaration documents (311/411/511/621)",
                "export": "export declaration documents (303/403/505/603)"}[mix]
        print(f"filings         {n} {what}, statuses {statuses}")
        print(f"throughput      {n / elapsed:,.0f} filings/s")
        print(f"latency         p50 {lat[n // 2] * 1000:.1f} ms  p95 {lat[int(n * .95)] * 1000:.1f} ms  p99 {lat[int(n * .99)] * 1000:.1f} ms")
        print(f"ledger          {_ledger_lag(base, args.filings)}")
        if set(statuses) != {201}:
            raise SystemExit(f"bench filings were not all accepted: {statuses}")
        return n / elapsed
    finally:
        server.terminate()
        server.wait(10)


def _ledger_lag(base: str, filings: int) -> str:
    """How long after the last answer every filing was in a signed checkpoint (one entry per filing)."""
    t = time.perf_counter()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    while True:
        size = int(httpx.get(base + "/v1/ledger/checkpoint", headers=auth).text.split("\n")[1])
        if size >= filings or time.perf_counter() - t > 30:
            break
        time.sleep(0.01)
    state = "every filing" if size >= filings else "NOT every filing"
    return f"{size:,} entries; {state} in a signed checkpoint {1000 * (time.perf_counter() - t):.0f} ms after the last answer"


def bench_validation(args: argparse.Namespace) -> dict:
    from gateway.intake.validate import check, thread_schemas

    firm = Party("3301960AB1", "基准测试电子商务有限公司", "DXPENT3301960AB1")
    bodies, _ = _messages(args.validations, firm, seed=11)
    schema = ceb_schema()
    thread_schemas()
    parser = etree.XMLParser(resolve_entities=False, no_network=True)

    def bare() -> None:
        for body in bodies:
            if not schema.validate(etree.fromstring(body, parser)):
                raise SystemExit("bench message invalid")

    def swx() -> None:
        for body in bodies:
            if check(body, max_depth=32, cop_code=firm.code).findings:
                raise SystemExit("bench message rejected")

    def best(fn) -> float:  # noqa: ANN001
        return min(_timed(fn) for _ in range(args.repeat))

    t_bare, t_swx = best(bare), best(swx)
    n = len(bodies)
    print(f"bare lxml       {n / t_bare:,.0f} messages/s (parse + XSD validate)")
    print(f"swx validation  {n / t_swx:,.0f} messages/s (safe parse + XSD + rules)")
    print(f"ratio           {t_bare / t_swx:.2f}× of bare lxml throughput")
    return {"bare_per_s": n / t_bare, "swx_per_s": n / t_swx, "ratio": t_bare / t_swx, "messages": n, "repeat": args.repeat}


def _timed(fn) -> float:  # noqa: ANN001
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--filings", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--database-url")
    p.add_argument("--validations", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip-http", action="store_true")
    p.add_argument("--json", help="also write the validation figures to this file (bench/run reads them)")
    p.add_argument("--direction", choices=("import", "export", "both"), default="import",
                   help="import: orders; export: export declarations' documents; both: export against import's same mix")
    args = p.parse_args()
    print(f"swx intake benchmark — {platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    if not args.skip_http:
        if args.direction == "import":
            bench_http(args)
        else:
            rates = {mix: bench_http(args, mix) for mix in (("import", "export") if args.direction == "both" else ("export",))}
            if len(rates) == 2:
                ratio = rates["export"] / rates["import"]
                verdict = "met" if ratio >= 0.8 else "NOT met"
                print(f"export/import   {ratio:.2f} of import's rate for the same four documents (target ≥ 0.80: {verdict})")
    figures = bench_validation(args)
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
