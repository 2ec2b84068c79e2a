"""``swx serve --workers 2`` as it is typed: the command starts the regulator stand-ins as their own
process (they take their keys from the window, the routes point at them) and two uvicorn workers.
One clean declaration filed by its four firms is released, every delivery is delivered (each worker
runs a dispatcher), nothing reaches customs twice, the ledger both workers appended to verifies, and
the stand-ins stop with the window. On SQLite (the default) and on PostgreSQL
(``SWX_TEST_DATABASE_URL``), each on a scratch database of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from schemas.builder import MessageBuilder
from tests.fixtures.declarations import file_clean, state_of
from tests.fixtures.paths import ROOT
from tests.fixtures.processes import REGULATORS, all_deliveries, children_of, register_firms, stand_ins_up, stop, workers_of
from tests.fixtures.server import MOCK_ENV, Spawned, _free_port, _healthy, eventually, scratch_database_url

DELIVERY_TOKEN = "swx_dl_multiprocess_" + "d" * 20
OPERATOR_TOKEN = "swx_op_multiprocess_" + "m" * 20


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds uvicorn's worker processes through /proc")
def test_serve_with_two_workers_starts_the_stand_ins_and_releases_a_declaration(settings, tmp_path):
    port, regulators_port = _free_port(), _free_port()
    base, regulators_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{regulators_port}"
    env = {
        **os.environ, **MOCK_ENV, "SWX_DATABASE_URL": scratch_database_url(settings, tmp_path), "SWX_PORT": str(port),
        "SWX_REGULATORS_PORT": str(regulators_port), "SWX_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "SWX_LEDGER_KEY_PATH": str(tmp_path / "ledger.key"), "SWX_LOG_LEVEL": "WARNING",
        "SWX_DELIVERY_BACKOFF": "0.1", "SWX_DELIVERY_BACKOFF_CAP": "1.0", "SWX_DELIVERY_MAX_ATTEMPTS": "20",
    }
    for name in ("SWX_MOCK_REGULATORS", "SWX_REGULATORS_URL", "SWX_ROUTES"):
        env.pop(name, None)
    swx = Spawned(base, env, tmp_path / "swx.log", [])
    http = httpx.Client(base_url=base, timeout=30)
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    try:
        serve = swx.run("serve", "--workers", "2")

        def serving() -> bool:
            assert serve.poll() is None, f"swx serve exited with {serve.returncode}: {swx.log.read_text()[-3000:]}"
            return _healthy(base) and len(workers_of(serve.pid)) == 2 and stand_ins_up(regulators_url)

        eventually(serving, timeout=60)
        workers = workers_of(serve.pid)
        stand_ins = [p for p, (_, cmdline) in children_of(serve.pid).items() if b"regulators\0serve" in cmdline]
        assert len(stand_ins) == 1, children_of(serve.pid)
        # the stand-ins took one key per regulator from the window
        for name in REGULATORS:
            listed = http.get(f"/v1/regulators/{name}/keys", headers=operator).json()["keys"]
            assert [k for k in listed if k["revokedAt"] is None], (name, listed)

        # the firms, each filing its own message of one clean declaration
        builder = MessageBuilder(seed=4242)
        parties = builder.parties()
        order, guids = file_clean(http, register_firms(http, operator, parties), builder, parties)

        def released():
            state = state_of(http, operator, order)
            return state if state and state["state"] == "released" else None

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
        # rotation, as the stand-ins take their keys: a new key with revokeOthers retires every other one
        first = http.post("/v1/regulators/fx/keys", headers=operator).json()["apiKey"]
        assert http.get("/v1/registry/changes", headers={"Authorization": f"Bearer {first}"}).status_code == 200
        second = http.post("/v1/regulators/fx/keys", json={"revokeOthers": True}, headers=operator).json()["apiKey"]
        # (the other worker may have the old key cached for SWX_AUTH_CACHE_SECONDS, 2 s)
        eventually(lambda: http.get("/v1/registry/changes", headers={"Authorization": f"Bearer {first}"}).status_code == 401,
                   timeout=10)
        assert http.get("/v1/registry/changes", headers={"Authorization": f"Bearer {second}"}).status_code == 200
        # a stopped window takes its stand-ins with it
        stop(swx.procs)
        eventually(lambda: not Path(f"/proc/{stand_ins[0]}").exists(), timeout=15)
    finally:
        http.close()
        stop(swx.procs)
