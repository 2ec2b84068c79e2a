"""Durability: a server killed with SIGKILL while filings pour in loses none it acknowledged.

Filings are stored in batches (group commit); an answer goes out only after its batch committed,
so whatever was answered 201 must be there after a restart, with its ledger entry.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.models import Message
from ledger.store import entries, pending
from schemas.builder import MessageBuilder, Parties, Party
from tests.fixtures.paths import ROOT
from tests.fixtures.server import _healthy, eventually, spawn_swx

FIRM = Party("3301966DUR", "持久性测试贸易有限公司", "DXPENT3301966DUR")
# A longer run for the record: SWX_DURABILITY_FILINGS=8000 SWX_DURABILITY_KILL_AFTER=4000
FILINGS = int(os.environ.get("SWX_DURABILITY_FILINGS", "1500"))
KILL_AFTER = int(os.environ.get("SWX_DURABILITY_KILL_AFTER", "300"))


async def _file_until_killed(url: str, key: str, bodies: list[bytes], kill_after: int, server: subprocess.Popen) -> set[str]:
    """File from 16 connections; SIGKILL the server once ``kill_after`` filings were acknowledged."""
    acked: set[str] = set()
    queue = list(reversed(bodies))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/xml"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            while queue:
                body = queue.pop()
                try:
                    r = await http.post("/v1/filings", content=body, headers=headers)
                except httpx.HTTPError:
                    return  # the server is gone
                assert r.status_code == 201, r.text
                acked.add(r.json()["guid"])
                if len(acked) >= kill_after and server.poll() is None:
                    server.send_signal(signal.SIGKILL)

    await asyncio.gather(*(client() for _ in range(16)))
    return acked


async def _stored(database_url: str, guids: set[str]) -> tuple[set[str], int, int, int]:
    """Which of ``guids`` are stored; how many messages, filing.accepted ledger entries, pending events."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            found = set((await conn.execute(select(Message.guid).where(Message.guid.in_(guids)))).scalars())
            messages = (await conn.execute(select(func.count()).select_from(Message))).scalar_one()
            accepted = sum(b'"kind":"filing.accepted"' in bytes(e) for e in (await conn.execute(select(entries.c.entry))).scalars())
            waiting = (await conn.execute(select(func.count()).select_from(pending))).scalar_one()
    finally:
        await engine.dispose()
    return found, messages, accepted, waiting


def test_kill_9_under_load_loses_no_acknowledged_filing(settings, tmp_path):
    with spawn_swx(settings, tmp_path) as spawned:
        operator = spawned.operator
        http = httpx.Client(base_url=spawned.url, timeout=30)
        firm = http.post("/v1/enterprises", headers=operator, json={
            "code": FIRM.code, "name": FIRM.name, "dxpId": FIRM.dxp_id,
            "roles": ["ebp", "ebc", "pay", "logistics", "agent", "assure", "operator"]})
        assert firm.status_code == 201, firm.text
        me = Parties(ebp=FIRM, ebc=FIRM, pay=FIRM, logistics=FIRM, agent=FIRM, assure=FIRM, operator=FIRM)
        b = MessageBuilder(66)
        bodies = [b.message("311", [b.order(me, lines=2)], sender=FIRM) for _ in range(FILINGS)]

        server = spawned.procs[0]
        started = time.monotonic()
        acked = asyncio.run(_file_until_killed(spawned.url, firm.json()["apiKey"], bodies, KILL_AFTER, server))
        print(f"{len(acked)} filings acknowledged in {time.monotonic() - started:.1f} s before the kill")
        assert server.wait(10) == -signal.SIGKILL
        assert len(acked) >= KILL_AFTER

        # restarted, the window has every acknowledged filing, and the ledger catches up with all of them
        restarted = spawned.run("serve")
        eventually(lambda: restarted.poll() is not None or _healthy(spawned.url), timeout=30)
        assert restarted.poll() is None, spawned.log.read_text()[-2000:]
        url = spawned.env["SWX_DATABASE_URL"]

        def caught_up():
            found, messages, accepted, waiting = asyncio.run(_stored(url, acked))
            return waiting == 0 and (found, messages, accepted)

        found, messages, accepted = eventually(caught_up, timeout=30, every=0.5)
        assert found == acked, f"{len(acked - found)} acknowledged filings were lost"
        assert accepted == messages >= len(acked)  # stored ones that were never answered count too
        verify = subprocess.run([sys.executable, "-m", "gateway.cli", "ledger", "verify"], cwd=ROOT, env=spawned.env,
                                capture_output=True, text=True, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
