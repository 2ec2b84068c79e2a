"""Statistics (统计监测): counts of filings, documents and declarations, and refusals ranked."""

from __future__ import annotations

import time
from dataclasses import replace

from tests.fixtures.parties import party_of


def stats(swx, auth=None, **params) -> dict:
    r = swx.http.get("/v1/stats", params=params, headers=auth or swx.operator)
    assert r.status_code == 200, r.text
    return r.json()


def test_stats_count_what_was_filed_and_why_it_was_refused(swx, builder):
    firm = swx.register(["ebp", "ebc", "pay", "logistics", "agent", "assure"])
    before = stats(swx, top=100)
    parties = builder.parties()
    decl = builder.declaration(parties)
    for code, kind in (("311", "order"), ("411", "payment"), ("511", "waybill"), ("621", "inventory")):
        assert swx.file(firm, builder.message(code, decl[kind], sender=party_of(firm))).status_code == 201
    assert swx.file(firm, builder.message("311", decl["order"], sender=party_of(firm))).status_code == 422  # duplicate
    bad = replace(decl["order"], head={**decl["order"].head, "orderNo": "SO-NEW-1", "acturalPaid": "1.00"})
    assert swx.file(firm, builder.message("311", bad, sender=party_of(firm))).status_code == 422
    assert swx.file(firm, b"<broken").status_code == 400
    after = stats(swx, top=100)
    assert after["filings"]["accepted"] - before["filings"]["accepted"] == 4
    assert after["filings"]["rejected"] - before["filings"]["rejected"] == 3
    mine = next(e for e in after["filings"]["byEnterprise"] if e["code"] == firm.code)
    assert mine == {"code": firm.code, "accepted": 4, "rejected": 3}
    assert after["filings"]["byType"]["311"]["rejected"] >= 2 and "unreadable" in after["filings"]["byType"]
    assert sum(d["accepted"] for d in after["filings"]["byDay"]) == after["filings"]["accepted"]
    codes = {(r["layer"], r["code"]) for r in after["rejections"]["atIntake"]}
    assert {("rule", "-301010"), ("xml", "0001")} <= codes
    assert after["documents"]["byKind"]["order"]
    # the declaration counts once it is released
    deadline = time.monotonic() + 20
    while (s := stats(swx))["declarations"]["byState"].get("released", 0) <= before["declarations"]["byState"].get("released", 0):
        assert time.monotonic() < deadline, s["declarations"]
        time.sleep(0.2)


def test_stats_for_regulators_not_firms(swx, filer):
    key = swx.http.post("/v1/regulators/customs/keys", headers=swx.operator).json()["apiKey"]
    assert swx.http.get("/v1/stats", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert swx.http.get("/v1/stats", headers=filer.auth).status_code == 403


def test_stats_by_period(swx):
    assert stats(swx, **{"from": "2001-01-01", "to": "2001-01-31"})["filings"]["total"] == 0
    r = swx.http.get("/v1/stats", params={"from": "2024-02-01", "to": "2024-01-01"}, headers=swx.operator)
    assert r.status_code == 400 and r.json()["field"] == "to"


def test_stats_count_export_by_direction_and_trade_mode(swx, filer, export_builder):
    from tests.fixtures.server import eventually

    b = export_builder
    parties = b.parties()
    before = stats(swx)
    decls = [b.declaration(parties, order_type=t) for t in ("B", "W")]
    for decl in decls:
        for code, kind in (("303", "order"), ("403", "collection"), ("505", "waybill"), ("603", "inventory")):
            if kind in decl:
                assert swx.file(filer, b.message(code, decl[kind], sender=party_of(filer))).status_code == 201
    after = stats(swx)
    grew = after["filings"]["byDirection"]["export"]["accepted"] - before["filings"]["byDirection"].get(
        "export", {"accepted": 0})["accepted"]
    assert grew == 6

    def counted() -> dict | None:
        lists = stats(swx)["lists"]["byDirection"]["export"]
        return lists if all(sum(lists.get(m, {}).values()) >= 1 for m in ("9710", "9810")) else None

    lists = eventually(counted)
    assert set(lists["9710"]) <= {"waiting", "released", "rejected", "review", "inspection", "departed"}
