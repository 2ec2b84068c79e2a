"""Delivery under faults: a regulator down for a while, a delivery that never succeeds, a dispatcher
killed mid-delivery. Whatever happens, every accepted filing reaches its regulators, and no
regulator processes anything twice."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.fixtures.parties import party_of
from tests.fixtures.paths import ROOT
from tests.fixtures.server import eventually, spawn_swx


def faults(http: httpx.Client, operator: dict, regulator: str, prefix: str = "/mock", **setting) -> None:
    """Switch a stand-in's faults: mounted in the window at ``/mock``, or at ``prefix`` ("" for a
    client of the stand-ins' own process)."""
    r = http.put(f"{prefix}/{regulator}/_admin/faults", json=setting, headers=operator)
    assert r.status_code == 200, r.text


def declaration_state(http: httpx.Client, operator: dict, order: dict) -> dict | None:
    r = http.get(f"/v1/declarations/{order['ebpCode']}/{order['orderNo']}", headers=operator)
    return r.json() if r.status_code == 200 else None


def file_declaration(swx, filer, builder) -> dict:
    decl = builder.declaration(builder.parties())
    guids = {}
    for code, kind in (("311", "order"), ("411", "payment"), ("511", "waybill"), ("621", "inventory")):
        r = swx.file(filer, builder.message(code, decl[kind], sender=party_of(filer)))
        assert r.status_code == 201, r.text
        guids[kind] = r.json()["guid"]
    return {"order": decl["order"].head, "guids": guids}


def deliveries_of(http: httpx.Client, operator: dict, guids: set[str]) -> list[dict]:
    out, after = [], 0
    while page := http.get("/v1/deliveries", params={"after": after, "limit": 500}, headers=operator).json()["deliveries"]:
        out += [d for d in page if d["messageGuid"] in guids]
        after = page[-1]["id"]
    return out


def customs_receipts(http: httpx.Client, firm_auth: dict) -> collections.Counter:
    """(document, status) pairs of customs' verdicts in a firm's feed: each must come once."""
    seen: collections.Counter = collections.Counter()
    after = 0
    while page := http.get("/v1/receipts", params={"after": after, "limit": 500}, headers=firm_auth).json()["receipts"]:
        seen.update((x.get("documentId"), x["returnStatus"]) for x in page if x["from"] == "customs")
        after = page[-1]["id"]
    return seen


def test_a_regulator_down_for_a_while_gets_everything_once_it_recovers(swx, builder, filer):
    faults(swx.http, swx.operator, "customs", outage=True)
    try:
        filed = file_declaration(swx, filer, builder)
        guids = set(filed["guids"].values())

        def retrying():
            ds = [d for d in deliveries_of(swx.http, swx.operator, guids) if d["regulator"] == "customs"]
            return len(ds) == 4 and all(d["attempts"] >= 2 and d["state"] == "pending" for d in ds) and ds

        for d in eventually(retrying, timeout=15):
            assert "503" in d["lastError"]
        # the other regulators are not held up by customs being down

        def others_delivered():
            others = [d for d in deliveries_of(swx.http, swx.operator, guids) if d["regulator"] != "customs"]
            return len(others) == 3 and all(d["state"] in ("delivered", "acknowledged") for d in others)

        eventually(others_delivered, timeout=10)
    finally:
        faults(swx.http, swx.operator, "customs", outage=False)
    state = eventually(lambda: (s := declaration_state(swx.http, swx.operator, filed["order"])) and s["state"] == "released" and s)
    assert state["documents"]["inventory"]["verdicts"]["customs"]["status"] == "800"
    final = deliveries_of(swx.http, swx.operator, guids)
    assert len(final) == 4 + 1 + 2 and all(d["state"] in ("delivered", "acknowledged") for d in final), final
    assert all(n == 1 for n in customs_receipts(swx.http, filer.auth).values())


def test_a_delivery_that_never_succeeds_ends_dead_and_is_retried_by_hand(swx, builder, filer):
    faults(swx.http, swx.operator, "fx", errorRate=1.0)
    try:
        parties = builder.parties()
        decl = builder.declaration(parties)
        r = swx.file(filer, builder.message("411", decl["payment"], sender=party_of(filer)))
        assert r.status_code == 201
        guid = r.json()["guid"]

        def dead():
            ds = [d for d in deliveries_of(swx.http, swx.operator, {guid}) if d["regulator"] == "fx"]
            return ds and ds[0]["state"] == "dead" and ds[0]

        d = eventually(dead, timeout=40)
        assert d["attempts"] == 12 and "500" in d["lastError"]
        listed = swx.http.get("/v1/deliveries", params={"state": "dead", "regulator": "fx"}, headers=swx.operator).json()
        assert d["id"] in [x["id"] for x in listed["deliveries"]]
        assert swx.http.post(f"/v1/deliveries/{d['id']}/retry", headers=filer.auth).status_code == 403
    finally:
        faults(swx.http, swx.operator, "fx", errorRate=0.0)
    r = swx.http.post(f"/v1/deliveries/{d['id']}/retry", headers=swx.operator)
    assert r.status_code == 200 and r.json()["state"] == "pending" and r.json()["attempts"] == 0
    done = eventually(lambda: (x := deliveries_of(swx.http, swx.operator, {guid})) and
                      all(y["state"] in ("delivered", "acknowledged") for y in x) and x)
    assert next(y for y in done if y["regulator"] == "fx")["attempts"] == 1
    assert swx.http.post(f"/v1/deliveries/{d['id']}/retry", headers=swx.operator).status_code == 409  # not dead any more
    # the ledger has every step of it, in order
    order = decl["order"].head

    def history():
        t = swx.http.get("/v1/trace", params={"ebpCode": order["ebpCode"], "orderNo": order["orderNo"]}, headers=swx.operator)
        kinds = [e["entry"]["kind"] for e in t.json()["entries"] if e["entry"].get("extra", {}).get("delivery") == d["id"]]
        return kinds if "delivery.delivered" in kinds else None

    assert eventually(history) == ["delivery.attempted"] * 11 + ["delivery.dead", "delivery.retried", "delivery.delivered"]


def test_bad_delivery_queries(swx):
    r = swx.http.get("/v1/deliveries", params={"state": "lost"}, headers=swx.operator)
    assert r.status_code == 400 and r.json()["field"] == "state"
    assert swx.http.post("/v1/deliveries/999999999/retry", headers=swx.operator).status_code == 404


# --- a dispatcher killed mid-delivery: swx serve without a dispatcher, and swx worker processes -----


@pytest.fixture
def separate(tmp_path, settings):
    """A second swx whose deliveries only ``swx worker`` processes make."""
    with spawn_swx(settings, tmp_path, SWX_DISPATCH="false", SWX_DELIVERY_TIMEOUT="2", SWX_DELIVERY_BACKOFF="0.1",
                   SWX_DELIVERY_BACKOFF_CAP="0.5") as spawned:
        yield spawned


def test_a_dispatcher_killed_mid_delivery_loses_nothing_and_nothing_is_processed_twice(separate, builder):
    from schemas.builder import Parties, Party

    env, operator = separate.env, separate.operator
    http = httpx.Client(base_url=separate.url, timeout=30)
    stand_ins = httpx.Client(base_url=separate.regulators, timeout=30)
    firm = http.post("/v1/enterprises", headers=operator, json={
        "code": "3301965XYZ", "name": "杀进程测试贸易有限公司", "dxpId": "DXPENT3301965XYZ",
        "roles": ["ebp", "ebc", "pay", "logistics", "agent", "assure", "operator"]}).json()
    auth = {"Authorization": f"Bearer {firm['apiKey']}", "Content-Type": "application/xml"}
    me = Party("3301965XYZ", "杀进程测试贸易有限公司", "DXPENT3301965XYZ")
    parties = Parties(ebp=me, ebc=me, pay=me, logistics=me, agent=me, assure=me, operator=me)
    orders, guids = [], set()
    for _ in range(3):
        decl = builder.declaration(parties)
        orders.append(decl["order"].head)
        for code, kind in (("311", "order"), ("411", "payment"), ("511", "waybill"), ("621", "inventory")):
            r = http.post("/v1/filings", content=builder.message(code, decl[kind], sender=me), headers=auth)
            assert r.status_code == 201, r.text
            guids.add(r.json()["guid"])
    # customs answers slowly: the first worker is killed while its deliveries are in flight
    faults(stand_ins, operator, "customs", "", latencyMs=1500)
    first = separate.run("worker")

    def in_flight():
        ds = deliveries_of(http, operator, guids)
        return any(d["attempts"] >= 1 and d["regulator"] == "customs" for d in ds)

    eventually(in_flight, timeout=20, every=0.05)
    time.sleep(0.3)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    stuck = [d for d in deliveries_of(http, operator, guids) if d["state"] == "pending"]
    assert stuck, "the kill came too late to catch a delivery in flight"
    faults(stand_ins, operator, "customs", "", latencyMs=0)
    # two dispatchers now share the rest (on PostgreSQL through SKIP LOCKED), including what the dead
    # one held, once its lease runs out
    separate.run("worker")
    separate.run("worker")
    for order in orders:
        eventually(lambda o=order: (s := declaration_state(http, operator, o)) and s["state"] == "released", timeout=60)
    final = deliveries_of(http, operator, guids)
    assert len(final) == 3 * (4 + 1 + 2) and all(d["state"] in ("delivered", "acknowledged") for d in final)
    # customs saw some messages twice (at least once delivery) and processed each once
    state = stand_ins.get("/customs/_admin/state", headers=operator).json()
    assert state["received"]["documents"] == 3 * 4
    counts = customs_receipts(http, {"Authorization": auth["Authorization"]})
    assert counts and all(n == 1 for n in counts.values()), counts
    verify = subprocess.run([sys.executable, "-m", "gateway.cli", "ledger", "verify"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
