"""``swx serve --workers 2`` with the regulator stand-ins out of process, as a deployment of several
workers runs: ``SWX_MOCK_REGULATORS=false``, a routing table pointing at ``swx regulators serve``,
a delivery token both share, and regulator keys the operator issues. One clean declaration filed by
its four firms is released, every delivery is delivered (each worker runs a dispatcher), nothing
reaches customs twice, and the ledger both workers appended to verifies. On SQLite (the default) and
on PostgreSQL (``SWX_TEST_DATABASE_URL``), each on a scratch database of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from schemas.builder import MessageBuilder
from tests.fixtures.paths import ROOT
from tests.fixtures.processes import (
    CORE,
    all_deliveries,
    clean_goods_only,
    issue_regulator_keys,
    register_firms,
    start_stand_ins,
    stop,
    window_env,
    workers_of,
)
from tests.fixtures.server import Spawned, _free_port, _healthy, eventually

DELIVERY_TOKEN = "swx_dl_multiprocess_" + "d" * 20
OPERATOR_TOKEN = "swx_op_multiprocess_" + "m" * 20


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds uvicorn's worker processes through /proc")
def test_two_workers_with_the_stand_ins_apart_release_a_declaration(settings, tmp_path, monkeypatch):
    port, regulators_port = _free_port(), _free_port()
    base, regulators_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{regulators_port}"
    env = window_env(settings, tmp_path, port, regulators_url, operator_token=OPERATOR_TOKEN, delivery_token=DELIVERY_TOKEN)
    swx = Spawned(base, env, tmp_path / "swx.log", [])
    http = httpx.Client(base_url=base, timeout=30)
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    try:
        serve = swx.run("serve", "--workers", "2")

        def serving() -> bool:
            assert serve.poll() is None, f"swx serve exited with {serve.returncode}: {swx.log.read_text()[-3000:]}"
            return _healthy(base) and len(workers_of(serve.pid)) == 2

        eventually(serving, timeout=60)
        workers = workers_of(serve.pid)
        # the operator issues the regulators' keys; the stand-ins start with them
        start_stand_ins(swx, regulators_port, issue_regulator_keys(http, operator))

        # the firms, each filing its own message of one clean declaration
        clean_goods_only(monkeypatch)
        builder = MessageBuilder(seed=4242)
        parties = builder.parties()
        firm_keys = register_firms(http, operator, parties)
        decl = builder.declaration(parties)
        guids = set()
        for code, kind in CORE:
            sender = parties.sender_for(code)
            r = http.post("/v1/filings", content=builder.message(code, decl[kind], sender=sender),
                          headers={"Authorization": f"Bearer {firm_keys[sender.code]}", "Content-Type": "application/xml"})
            assert r.status_code == 201, f"{kind}: {r.text}"
            guids.add(r.json()["guid"])
        order = decl["order"].head

        def released():
            r = http.get(f"/v1/declarations/{order['ebpCode']}/{order['orderNo']}", headers=operator)
            return r.status_code == 200 and r.json()["state"] == "released" and r.json()

        state = eventually(released, timeout=60, every=0.25)
        assert state["documents"]["inventory"]["verdicts"]["customs"]["status"] == "800"

        def all_delivered():
            ds = all_deliveries(http, operator)
            return ds and all(d["state"] in ("delivered", "acknowledged") for d in ds) and ds

        ds = eventually(all_delivered, timeout=30, every=0.25)
        messages = [d for d in ds if d["messageGuid"] in guids]
        assert len(messages) == 4 + 1 + 2, messages  # customs 4, fx the payment, inspection and tax the list
        assert any(d["kind"] == "registration" for d in ds)
        # customs took each document once, however many dispatchers there were
        customs = httpx.get(f"{regulators_url}/customs/_admin/state", headers=operator, timeout=10).json()
        assert customs["received"]["documents"] == 4, customs["received"]
        # both workers served throughout (none died and was replaced)
        assert workers_of(serve.pid) == workers
        # one ledger, appended to by both workers' sequencers, verifies
        verify = subprocess.run([sys.executable, "-m", "gateway.cli", "ledger", "verify"], cwd=ROOT, env=env,
                                capture_output=True, text=True, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        http.close()
        stop(swx.procs)
