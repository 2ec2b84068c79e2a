"""Every window process SIGKILLed at once while declarations flow: nothing acknowledged is lost, nothing done twice.

Why: a deployment runs the window as several processes (``swx serve --workers 2`` and ``swx worker``),
any of which may die at any moment; test_durability kills one process under filings only. Here all
three dispatchers and sequencers die together, with deliveries claimed, receipts posted and filings
unanswered, while the regulator stand-ins (a process of their own, not killed) keep count. Restarted
on the same database, key and tokens, the unanswered filings filed again: every acknowledged filing is
stored, every delivery delivered, each regulator took each document once (a repeat, at least once, is
dropped), every receipt was applied once, and the ledger verifies. SQLite by default, PostgreSQL with
``SWX_TEST_DATABASE_URL``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.routing.models import Delivery
from ledger.store import entries, pending
from schemas.builder import MessageBuilder
from tests.fixtures.paths import ROOT
from tests.fixtures.processes import (
    CORE,
    REGULATORS,
    all_deliveries,
    all_pages,
    children_of,
    clean_goods_only,
    issue_regulator_keys,
    register_firms,
    start_stand_ins,
    started_at,
    stop,
    window_env,
    workers_of,
)
from tests.fixtures.server import Spawned, _free_port, _healthy, eventually

DELIVERY_TOKEN = "swx_dl_kill_everything_" + "k" * 20
OPERATOR_TOKEN = "swx_op_kill_everything_" + "o" * 20
DECLARATIONS = 48
FILERS = 4  # threads filing at once, each a declaration at a time: order, payment, waybill, list
KILL_AFTER = DECLARATIONS * len(CORE) // 3  # filings acknowledged before the kill
INSPECTION_LATENCY_MS = 300
# Who gets which message (gateway/routing/routes.toml), and so how many documents each regulator takes per declaration.
ROUTED = {"order": ("customs",), "payment": ("customs", "fx"), "waybill": ("customs",), "inventory": ("customs", "inspection", "tax")}
PER_DECLARATION = {name: sum(name in to for to in ROUTED.values()) for name in REGULATORS}


@dataclass
class Filing:
    guid: str
    kind: str
    body: bytes
    key: str  # its filer's API key

    def post(self, http: httpx.Client) -> httpx.Response:
        return http.post("/v1/filings", content=self.body,
                         headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/xml"})


@dataclass
class Filer:
    """Files declarations from a few threads and keeps what was answered, and what was not."""

    base: str
    acked: dict[str, dict] = field(default_factory=dict)  # guid -> its answer (201)
    unanswered: set[str] = field(default_factory=set)  # sent, and the window went away before answering
    replayed: set[str] = field(default_factory=set)  # answered Idempotent-Replayed: it had been stored
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def file(self, declaration: list[Filing]) -> bool:
        """File what of ``declaration`` is not acknowledged yet, in order; False once the window is gone."""
        with httpx.Client(base_url=self.base, timeout=30) as http:
            for f in declaration:
                if f.guid in self.acked:
                    continue
                try:
                    r = f.post(http)
                except httpx.ConnectError:
                    return False  # not sent: the window is down
                except httpx.TransportError:
                    with self.lock:
                        self.unanswered.add(f.guid)
                    return False
                with self.lock:
                    if r.status_code != 201 or r.json().get("guid") != f.guid:
                        self.problems.append(f"{f.kind} {f.guid}: {r.status_code} {r.text[:500]}")
                        return True
                    if r.headers.get("Idempotent-Replayed") == "true":
                        self.replayed.add(f.guid)
                    self.acked[f.guid] = r.json()
        return True

    def file_all(self, declarations: list[list[Filing]], *, kill_after: int = 0, kill=None) -> list[list[Filing]]:
        """File ``declarations`` from ``FILERS`` threads, calling ``kill`` once ``kill_after`` filings are
        acknowledged; the declarations left with a filing unacknowledged."""
        with ThreadPoolExecutor(FILERS) as pool:
            futures = [pool.submit(self.file, d) for d in declarations]
            if kill is not None:
                eventually(lambda: len(self.acked) >= kill_after or all(f.done() for f in futures), timeout=60, every=0.005)
                kill()
            for f in futures:
                f.result()
        assert not self.problems, self.problems
        return [d for d in declarations if any(f.guid not in self.acked for f in d)]


def kill_window(serve: subprocess.Popen, worker: subprocess.Popen) -> dict[int, int]:
    """SIGKILL uvicorn's master, its children (the workers) and ``swx worker``, all in one go; their
    start times by pid."""
    victims = {p.pid: started_at(p.pid) for p in (serve, worker)}
    victims |= {pid: started for pid, (started, _) in children_of(serve.pid).items()}
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    return victims


def all_receipts(http: httpx.Client, operator: dict) -> list[dict]:
    return all_pages(http, operator, "/v1/receipts", "receipts")


async def _claimed_unrecorded(database_url: str) -> list[tuple[int, str, str]]:
    """Deliveries a dispatcher claimed (an attempt counted) whose outcome was never recorded."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(Delivery.id, Delivery.regulator, Delivery.message_type)
                                      .where(Delivery.state == "pending", Delivery.attempts > 0).order_by(Delivery.id))
            return [tuple(r) for r in rows]
    finally:
        await engine.dispose()


async def _ledger(database_url: str) -> tuple[int, list[dict]]:
    """Events still waiting for the sequencer, and the sequenced entries."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            waiting = (await conn.execute(select(func.count()).select_from(pending))).scalar_one()
            rows = [json.loads(bytes(e)) for e in (await conn.execute(select(entries.c.entry))).scalars()]
    finally:
        await engine.dispose()
    return waiting, rows


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds uvicorn's worker processes through /proc")
def test_kill_9_of_every_window_process_loses_nothing_and_does_nothing_twice(settings, tmp_path, monkeypatch):
    started = time.monotonic()
    port, regulators_port = _free_port(), _free_port()
    base, regulators_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{regulators_port}"
    # a short lease (3 × the delivery timeout): what a killed dispatcher had claimed goes out again soon
    env = window_env(settings, tmp_path, port, regulators_url, operator_token=OPERATOR_TOKEN, delivery_token=DELIVERY_TOKEN,
                     SWX_DELIVERY_TIMEOUT="2")
    database = env["SWX_DATABASE_URL"]
    on_postgres = database.startswith("postgresql")
    swx = Spawned(base, env, tmp_path / "swx.log", [])
    http = httpx.Client(base_url=base, timeout=30)
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    serve: subprocess.Popen | None = None

    def start_window(*, migrated: bool) -> tuple[subprocess.Popen, subprocess.Popen]:
        serve = swx.run("serve", "--workers", "2")
        worker = swx.run("worker") if migrated else None  # else after serve, which migrates the database

        def serving() -> bool:
            assert serve.poll() is None, f"swx serve exited with {serve.returncode}: {swx.log.read_text()[-3000:]}"
            return _healthy(base) and len(workers_of(serve.pid)) == 2

        eventually(serving, timeout=60)
        return serve, worker or swx.run("worker")

    def stand_in(name: str) -> dict:
        r = httpx.get(f"{regulators_url}/{name}/_admin/state", headers=operator, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    try:
        serve, worker = start_window(migrated=False)
        # The stand-ins wait long for a list's other documents and for its number, and retry receipts
        # often: the window will be away for a while.
        start_stand_ins(swx, regulators_port, issue_regulator_keys(http, operator), SWX_MOCK_MATCH_WAIT="30",
                        SWX_MOCK_TAX_WAIT="30", SWX_MOCK_RECEIPT_BACKOFF_MAX="0.5")
        # Inspection answers late, so a dispatcher's round (sent together, recorded together) holds
        # deliveries the others have taken but the window has not recorded: the kill finds some.
        r = httpx.put(f"{regulators_url}/inspection/_admin/faults", json={"latencyMs": INSPECTION_LATENCY_MS},
                      headers=operator, timeout=10)
        assert r.status_code == 200, r.text

        clean_goods_only(monkeypatch)
        builder = MessageBuilder(seed=9911)
        parties = builder.parties()
        firm_keys = register_firms(http, operator, parties)
        declarations, orders = [], []
        for _ in range(DECLARATIONS):
            decl = builder.declaration(parties)
            orders.append(decl["order"].head)
            filings = []
            for code, kind in CORE:
                sender, guid = parties.sender_for(code), builder.guid()
                filings.append(Filing(guid, kind, builder.message(code, decl[kind], sender=sender, guid=guid), firm_keys[sender.code]))
            declarations.append(filings)
        by_guid = {f.guid: f for d in declarations for f in d}

        # file; a third of the way through, every window process is killed at once
        filer = Filer(base)
        victims: dict[int, int] = {}
        left = filer.file_all(declarations, kill_after=KILL_AFTER, kill=lambda: victims.update(kill_window(serve, worker)))
        assert serve.wait(10) == -signal.SIGKILL and worker.wait(10) == -signal.SIGKILL
        eventually(lambda: all(started_at(pid) != t for pid, t in victims.items()), timeout=10)
        before_kill, unanswered = dict(filer.acked), set(filer.unanswered)
        assert len(before_kill) >= KILL_AFTER and left, "the kill came after the filing was over"
        at_kill = {name: stand_in(name) for name in REGULATORS}
        in_flight = asyncio.run(_claimed_unrecorded(database))

        # restarted, the window takes the unanswered filings again (the first answer, if they had been
        # stored) and the rest after them
        serve, worker = start_window(migrated=True)
        assert not filer.file_all(left)
        assert set(filer.acked) == set(by_guid)
        assert filer.replayed <= unanswered, "a filing never sent before was answered as stored"
        # a filing acknowledged before the kill, filed again, is answered as it was then and stores nothing
        for guid, answer in sorted(before_kill.items()):
            r = by_guid[guid].post(http)
            assert r.status_code == 201 and r.headers.get("Idempotent-Replayed") == "true", (guid, r.status_code, r.text[:300])
            assert r.json() == answer

        # every declaration is released
        released: dict[tuple[str, str], dict] = {}

        def all_released() -> bool:
            for o in orders:
                key = (o["ebpCode"], o["orderNo"])
                if key not in released:
                    r = http.get(f"/v1/declarations/{key[0]}/{key[1]}", headers=operator)
                    assert r.status_code == 200 and r.json()["state"] in ("waiting", "released"), r.text[:2000]
                    if r.json()["state"] == "released":
                        released[key] = r.json()
            return len(released) == len(orders)

        eventually(all_released, timeout=90, every=0.5)

        # ... and everything settles: deliveries done, every receipt taken, tax bills sent, the ledger sequenced
        def settled():
            ds = all_deliveries(http, operator)
            states = {n: stand_in(n) for n in REGULATORS}
            quiet = all(s["receipts"]["pending"] == 0 and s["receipts"]["failing"] == 0 for s in states.values())
            done = all(d["state"] in ("delivered", "acknowledged", "dead") for d in ds)
            taxed = states["tax"]["billCount"] + len(states["tax"]["abandoned"]) == DECLARATIONS
            waiting, ledger = asyncio.run(_ledger(database))
            return quiet and done and taxed and waiting == 0 and (ds, states, ledger)

        ds, states, ledger = eventually(settled, timeout=60, every=0.5)

        # every acknowledged filing is stored, once (version 1), its document in the state customs gave it
        document_of = {}
        for guid, f in by_guid.items():
            r = http.get(f"/v1/filings/{guid}", headers=operator)
            assert r.status_code == 200 and r.json()["status"] == "accepted", (guid, r.status_code, r.text[:300])
            (doc,) = r.json()["documents"]
            assert (doc["version"], doc["current"]["version"]) == (1, 1), (f.kind, guid, doc)
            assert doc["current"]["status"] == ("800" if f.kind == "inventory" else "120"), (f.kind, guid, doc)
            (own,) = r.json()["receipts"]  # the window's own receipt, once
            document_of[own["documentId"]] = f
        for state in released.values():
            docs = state["documents"]
            assert {k: docs[k]["status"] for k in ROUTED} == {"order": "120", "payment": "120", "waybill": "120", "inventory": "800"}
            assert docs["inventory"]["verdicts"]["customs"]["status"] == "800" and docs["inventory"]["invtNo"], docs

        # every receipt was applied once: per document no (addressee, regulator, type, status) twice, every
        # regulator it went to answering, and customs' chain to each addressee 120 (then 399, 800 for a list)
        # (a regulator that answered only after the restart may still be posting: its receipts are waited for,
        # up to 30 s, before the checks; a receipt lost for good still fails them)
        def forwarded_receipts() -> dict[int, list[tuple]]:
            out: dict[int, list[tuple]] = {}
            for x in all_receipts(http, operator):
                out.setdefault(x["documentId"], []).append((x["addressee"], x["from"], x["receiptType"], x["returnStatus"]))
            return out

        deadline = time.monotonic() + 30
        while True:
            forwarded = forwarded_receipts()
            answered = all({r[1] for r in forwarded.get(d, ())} >= {"swx", *ROUTED[f.kind]} for d, f in document_of.items())
            if answered or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert set(forwarded) == set(document_of)
        for doc_id, rows in forwarded.items():
            f = document_of[doc_id]
            twice = [k for k, n in Counter(rows).items() if n > 1]
            assert not twice, f"{f.kind} {f.guid}: receipts applied twice: {twice}"
            assert {r[1] for r in rows} == {"swx", *ROUTED[f.kind]}, (f.kind, f.guid, rows)
            chains: dict[str, list[str]] = {}
            for addressee, regulator, _, status in rows:
                if regulator == "customs":
                    chains.setdefault(addressee, []).append(status)
            assert all(c == (["120", "399", "800"] if f.kind == "inventory" else ["120"]) for c in chains.values()), (f.kind, f.guid, chains)

        # every delivery delivered, none dead; one per filing and regulator (the re-filings made none)
        assert all(d["state"] in ("delivered", "acknowledged") for d in ds), [d for d in ds if d["state"] == "dead"]
        per_route = Counter((d["messageGuid"], d["regulator"]) for d in ds if d["kind"] == "message")
        assert per_route == Counter({(g, reg): 1 for g, f in by_guid.items() for reg in ROUTED[f.kind]}), per_route

        # each regulator took each document exactly once; repeats (at least once, after a kill) were dropped
        repeats = {n: s["received"]["repeats"] for n, s in states.items()}
        for name, per in PER_DECLARATION.items():
            received = states[name]["received"]
            assert received["documents"] == per * DECLARATIONS, (
                f"{name} took {received['documents']} distinct documents, not {per * DECLARATIONS}; "
                f"repeats {repeats}, received {received}")
        assert states["tax"]["billCount"] == DECLARATIONS and not states["tax"]["abandoned"], states["tax"]["abandoned"]

        # one ledger, appended to by every sequencer before and after the kill, verifies
        verify = subprocess.run([sys.executable, "-m", "gateway.cli", "ledger", "verify"], cwd=ROOT, env=env,
                                capture_output=True, text=True, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr

        # Done once each: a delivery recorded delivered twice was claimed by two dispatchers at once (one
        # the killed dispatchers had sent, and not recorded, goes out again: a repeat, recorded once); a
        # delivery a verdict acknowledged and then left "delivered" lost the acknowledgement to a
        # dispatcher's record written from a stale read of its state.
        delivered = Counter(e["extra"]["delivery"] for e in ledger if e["kind"] == "delivery.delivered")
        recorded_twice = {d: n for d, n in delivered.items() if n > 1}
        lost_ack = [(d["id"], d["regulator"], d["messageType"], d["deliveredAt"], d["acknowledgedAt"])
                    for d in ds if d["kind"] == "message" and d["state"] == "delivered"]
        print(f"\n{'postgresql' if on_postgres else 'sqlite'}: {len(before_kill)} filings acknowledged before the kill, "
              f"{len(unanswered)} unanswered ({len(filer.replayed)} of them had been stored), {len(by_guid) - len(before_kill)} "
              f"acknowledged after; at the kill customs had {at_kill['customs']['received']['documents']} documents and "
              f"{at_kill['customs']['receipts']['pending']} receipts waiting, {len(in_flight)} deliveries claimed and not "
              f"recorded {in_flight}; repeats {repeats}; delivery attempts {dict(sorted(Counter(d['attempts'] for d in ds).items()))}; "
              f"recorded delivered twice {recorded_twice}; acknowledgements lost {len(lost_ack)} {lost_ack[:5]}; "
              f"{sum(map(len, forwarded.values()))} receipts, {len(ledger)} ledger entries; {time.monotonic() - started:.1f} s")
        assert not recorded_twice, f"deliveries recorded as delivered twice: {recorded_twice}"
        assert not lost_ack, f"deliveries answered by a verdict left 'delivered' (acknowledgement overwritten): {lost_ack}"
    finally:
        http.close()
        if serve is not None:
            stop([serve, *(p for p in swx.procs if p is not serve)])
