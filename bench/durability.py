"""Durability under load: SIGKILL every server process mid-stream, restart, and check each acknowledged filing.

    .venv/bin/python bench/durability.py [--database-url URL] [--workers 2] [--kill-after 8] [--concurrency 32]

Starts ``swx serve`` (``--workers N``, deliveries left in the outbox as in the intake row with
``--no-dispatch``) on a fresh bench database, files distinct single-order filings from a lean
asyncio client (raw HTTP/1.1 over keep-alive connections) that records the guid of every 201, kills
the whole server process tree with SIGKILL after ``--kill-after`` seconds, starts the server again
on the same database and checks: every acknowledged guid is stored; once the sequencer has caught
up, every stored message has its ``filing.accepted`` ledger entry; ``swx ledger verify`` passes.
Exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import orjson
from common import DEFAULT_PG, Connection, Server, log, proc_tree, raw_request, register_firm
from load import bench_parties, read_bodies, register_parties, write_orders


async def file_until_killed(server: Server, key: str, bodies: list[bytes], kill_after: float, concurrency: int) -> dict:
    host, port = "127.0.0.1", server.port
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/xml"}
    pending = iter(bodies)
    acked: set[str] = set()
    errors = 0
    start = time.monotonic()

    async def client() -> None:
        nonlocal errors
        conn = Connection(host, port)
        for body in pending:
            try:
                status, answer = await conn.call(raw_request("POST", "/v1/filings", f"{host}:{port}", headers, body))
            except (OSError, asyncio.IncompleteReadError):
                return  # the server is gone
            if status == 201:
                acked.add(orjson.loads(answer)["guid"])
            else:
                errors += 1

    async def killer() -> float:
        await asyncio.sleep(kill_after)
        tree = proc_tree(server.pid)
        for pid in tree:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        return time.monotonic() - start

    kill_task = asyncio.create_task(killer())
    await asyncio.gather(*(client() for _ in range(concurrency)))
    killed_at = await kill_task
    return {"acked": acked, "errors": errors, "killed_at": killed_at}


async def stored(url: str, guids: set[str]) -> tuple[int, int, int, int]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        found = await conn.fetchval("SELECT count(*) FROM messages WHERE guid = ANY($1::text[])", list(guids))
        messages = await conn.fetchval("SELECT count(*) FROM messages")
        accepted = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE position('\"kind\":\"filing.accepted\"'::bytea in entry) > 0")
        waiting = await conn.fetchval("SELECT count(*) FROM ledger_pending")
    finally:
        await conn.close()
    return found, messages, accepted, waiting


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default=DEFAULT_PG)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kill-after", type=float, default=8.0, help="seconds of load before the SIGKILL")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--filings", type=int, default=20_000, help="bodies built (more than can be filed before the kill)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="swx-durability-"))
    parties = bench_parties()
    env = {"SWX_DISPATCH": "false"}
    kw = {"workers": args.workers, "external_regulators": args.workers > 1}
    server = Server(args.database_url, env=env, key_dir=str(work), **kw).start()
    key = register_firm(server)
    register_parties(server, parties)
    bodies = read_bodies(write_orders(work / "bodies", args.filings, parties, "K"))
    log(f"filing from {args.concurrency} connections; SIGKILL of every server process after {args.kill_after:g} s")
    res = asyncio.run(file_until_killed(server, key, bodies, args.kill_after, args.concurrency))
    server.proc.wait(10)
    server.stop()
    acked = res["acked"]
    log(f"{len(acked):,} filings acknowledged in {res['killed_at']:.1f} s ({len(acked) / res['killed_at']:,.0f}/s), "
        f"{res['errors']} other answers; server killed")

    again = Server(args.database_url, env=env, key_dir=str(work), reset=False, **kw).start()
    try:
        deadline = time.monotonic() + 60
        while True:
            found, messages, accepted, waiting = asyncio.run(stored(args.database_url, acked))
            if waiting == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        verify = subprocess.run([sys.executable, "-m", "gateway.cli", "ledger", "verify"], cwd=Path(__file__).parents[1],
                                env=again.env(), capture_output=True, text=True, check=False)
    finally:
        again.stop()
    ok = found == len(acked) and accepted == messages and waiting == 0 and verify.returncode == 0
    log(f"after restart: {found:,} of {len(acked):,} acknowledged filings stored ({messages:,} messages in all, "
        f"{messages - found:,} stored but never answered); filing.accepted entries {accepted:,} = messages {messages:,}: "
        f"{accepted == messages}; ledger pending {waiting}; swx ledger verify: "
        f"{'OK' if verify.returncode == 0 else 'FAILED'} ({(verify.stdout or verify.stderr).strip().splitlines()[-1]})")
    print("durability:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
