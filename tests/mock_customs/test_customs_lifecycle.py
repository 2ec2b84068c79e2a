"""The customs stand-in against a fake window (tests/fixtures/mock_customs.py): the per-transaction and
annual limits and the quota a return frees, cancellation, credit ratings and manual review, and
changes (appType 2) and deletions (appType 3)."""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

from schemas.builder import MessageBuilder
from tests.fixtures.mock_customs import DELIVERY, FakeWindow, Harness, edit, running, statuses


# ---------------------------------------------------------------------- limits
async def test_over_the_per_transaction_limit(h: Harness) -> None:
    parties = h.builder.parties()
    decl = h.builder.declaration(parties, lines_overrides=[{"price": "5200.00", "qty": "1"}])
    paid = decl["order"].head["acturalPaid"]
    assert Decimal(paid) > 5000
    await h.declare(decl, parties)
    (got,) = await h.wait_for(decl["inventory"].head["guid"], "100")
    assert got["returnInfo"] == f"-621005 order acturalPaid {paid} exceeds the per-transaction limit 5000.00"


async def test_annual_limit_across_orders_and_a_return_frees_quota(window: FakeWindow) -> None:
    builder = MessageBuilder(seed=4242)
    parties = builder.parties()
    first = builder.declaration(parties, lines=2)
    buyer = {k: first["order"].head[k] for k in ("buyerIdNumber", "buyerName")}
    decls = [first] + [builder.declaration(parties, **buyer) for _ in range(2)]
    decl_time = first["inventory"].head["declTime"]
    for d in decls:  # one calendar year for all three
        d["inventory"] = edit(d["inventory"], declTime=decl_time)
    paid = [Decimal(d["order"].head["acturalPaid"]) for d in decls]
    limit = sum(paid) - Decimal("0.01")  # the third order overshoots by one cent
    async with running(window, annual_limit=limit) as h:
        h.builder = builder
        for d in decls[:2]:
            await h.declare(d, parties)
            await h.wait_for(d["inventory"].head["guid"], "800")
        await h.declare(decls[2], parties)
        (refused,) = await h.wait_for(decls[2]["inventory"].head["guid"], "100")
        used, total = paid[0] + paid[1], sum(paid)
        assert refused["returnInfo"].startswith(f"-621018 buyer {buyer['buyerIdNumber'][:4]}")
        assert f"has bought {used:.2f} in {decl_time[:4]}" in refused["returnInfo"]
        assert f"acturalPaid {paid[2]:.2f} that is {total:.2f}, over the annual limit {limit:.2f}" in refused["returnInfo"]

        # Return one unit of the first line of the first order: its price comes back to the account.
        inv = decls[0]["inventory"]
        invt_no = h.window.for_guid(inv.head["guid"])[0]["invtNo"]
        refund = builder.refund(inv, parties, invt_no, lines_overrides=[{"qty": "1"}])
        refund = dataclasses.replace(refund, lines=refund.lines[:1])
        await h.send("625", refund, parties)
        (back,) = await h.wait_for(refund.head["guid"], "399")
        price = Decimal(decls[0]["order"].lines[0]["price"])
        assert back["receipt"] == "CEB626Message" and back["invtNo"] == invt_no
        assert f"CNY {price:.2f} given back" in back["returnInfo"]
        state = (await h.admin("GET", "/_admin/state")).json()
        assert Decimal(state["accounts"][buyer["buyerIdNumber"]][decl_time[:4]]) == used - price

        again = edit(decls[2]["inventory"], guid=builder.guid(), appType="2")
        await h.send("621", again, parties)
        assert statuses(await h.wait_for(again.head["guid"], "800")) == ["120", "399", "800"]


async def test_return_must_match_the_list(h: Harness) -> None:
    parties = h.builder.parties()
    decl = h.builder.declaration(parties, lines=2)
    await h.declare(decl, parties)
    got = await h.wait_for(decl["inventory"].head["guid"], "800")
    invt_no = got[0]["invtNo"]
    inv = decl["inventory"]
    too_many = str(int(inv.lines[0]["qty"]) + 1)
    bad = h.builder.refund(inv, parties, invt_no, lines_overrides=[{"qty": too_many}, {"gcode": "0101210010"}])
    await h.send("625", bad, parties)
    (r,) = await h.wait_for(bad.head["guid"], "100")
    assert f"-625042 return gnum 1 qty {too_many} > list qty {inv.lines[0]['qty']}" in r["returnInfo"]
    assert f"-625041 return gnum 2 gcode 0101210010 ≠ list gcode {inv.lines[1]['gcode']}" in r["returnInfo"]
    unknown = h.builder.refund(inv, parties, invt_no[:-1] + ("0" if invt_no[-1] != "0" else "1"))
    await h.send("625", unknown, parties)
    (u,) = await h.wait_for(unknown.head["guid"], "100")
    assert u["returnInfo"].startswith("-625018 ")
    full = h.builder.refund(inv, parties, invt_no)
    await h.send("625", full, parties)
    await h.wait_for(full.head["guid"], "399")
    state = (await h.admin("GET", "/_admin/state")).json()
    goods, paid = Decimal(decl["order"].head["goodsValue"]), Decimal(decl["order"].head["acturalPaid"])
    assert Decimal(state["accounts"][inv.head["buyerIdNumber"]][inv.head["declTime"][:4]]) == paid - goods


# ---------------------------------------------------------------------- cancellation
async def test_cancellation_gives_the_charge_back(h: Harness) -> None:
    parties = h.builder.parties()
    decl = h.builder.declaration(parties)
    await h.declare(decl, parties)
    inv = decl["inventory"]
    invt_no = (await h.wait_for(inv.head["guid"], "800"))[0]["invtNo"]
    cancel = h.builder.cancel(inv, parties, invt_no)
    await h.send("623", cancel, parties)
    (c,) = await h.wait_for(cancel.head["guid"], "399")
    assert c["receipt"] == "CEB624Message" and c["invtNo"] == invt_no and len(c["preNo"]) == 18
    assert f"CNY {decl['order'].head['acturalPaid']} given back" in c["returnInfo"]
    state = (await h.admin("GET", "/_admin/state")).json()
    assert state["counts"]["listsByState"] == {"cancelled": 1}
    assert state["accounts"][inv.head["buyerIdNumber"]][inv.head["declTime"][:4]] == "0.00"

    twice = h.builder.cancel(inv, parties, invt_no)
    await h.send("623", twice, parties)
    (t,) = await h.wait_for(twice.head["guid"], "100")
    assert t["returnInfo"].startswith("-623005 ")
    unknown = h.builder.cancel(inv, parties, f"{inv.head['customsCode']}2000I000000001")
    await h.send("623", unknown, parties)
    (u,) = await h.wait_for(unknown.head["guid"], "100")
    assert u["returnInfo"].startswith("-623003 no list numbered")


# ---------------------------------------------------------------------- credit and manual review
async def test_dishonest_seller_goes_to_review_then_operator_releases(h: Harness) -> None:
    parties = h.builder.parties()
    h.window.enterprises[parties.ebc.code] = {"code": parties.ebc.code, "version": 1, "status": "active",
                                              "creditRating": "dishonest"}
    decl = h.builder.declaration(parties)
    await h.declare(decl, parties)
    inv = decl["inventory"].head
    got = await h.wait_for(inv["guid"], "300")
    assert statuses(got) == ["120", "300"] and f"ebcCode {parties.ebc.code} is rated dishonest" in got[1]["returnInfo"]
    assert sorted(h.window.registry_reads) == sorted({parties.ebc.code, parties.agent.code})
    await asyncio.sleep(0.1)
    assert statuses(h.window.for_guid(inv["guid"])) == ["120", "300"]  # held until the operator decides

    body = {"ebcCode": inv["ebcCode"], "orderNo": inv["orderNo"], "release": True, "note": "资料核实无误"}
    assert (await h.admin("POST", "/_admin/review", token=None, json=body)).status_code == 401
    r = await h.admin("POST", "/_admin/review", json=body)
    assert r.status_code == 200 and r.json()["state"] == "concluded"
    got = await h.wait_for(inv["guid"], "800")
    assert statuses(got) == ["120", "300", "399", "800"]
    assert (await h.admin("POST", "/_admin/review", json=body)).status_code == 409


async def test_dishonest_agent_from_a_pushed_registration_is_refused_at_review(h: Harness) -> None:
    parties = h.builder.parties()
    view = {"code": parties.agent.code, "version": 2, "status": "active", "customsCode": parties.agent.code,
            "creditRating": "dishonest"}
    r = await h.http.post("/registrations", json=view, headers={"Authorization": f"Bearer {DELIVERY}"})
    assert r.status_code == 200
    decl = h.builder.declaration(parties)
    await h.declare(decl, parties)
    inv = decl["inventory"].head
    await h.wait_for(inv["guid"], "300")
    assert parties.agent.code not in h.window.registry_reads  # known from the push, not read
    body = {"ebcCode": inv["ebcCode"], "orderNo": inv["orderNo"], "release": False, "note": "申报人信用异常"}
    assert (await h.admin("POST", "/_admin/review", json=body)).status_code == 200
    got = await h.wait_for(inv["guid"], "100")
    assert statuses(got) == ["120", "300", "100"]
    assert got[-1]["returnInfo"] == "-621048 refused at manual review: 申报人信用异常"
    state = (await h.admin("GET", "/_admin/state")).json()
    assert state["accounts"][inv["buyerIdNumber"]][inv["declTime"][:4]] == "0.00"  # the charge came back
    missing = await h.admin("POST", "/_admin/review", json={**body, "orderNo": "NOPE"})
    assert missing.status_code == 404


async def test_changes_and_deletions(h: Harness) -> None:
    parties = h.builder.parties()
    decl = h.builder.declaration(parties)
    # A list withdrawn (appType 3) while it waits is never matched; deleting it again finds nothing.
    await h.send("621", decl["inventory"], parties)
    gone = edit(decl["inventory"], guid=h.builder.guid(), appType="3")
    await h.send("621", gone, parties)
    (g,) = await h.wait_for(gone.head["guid"], "120")
    assert g["returnInfo"] == "list deleted (删除入库)"
    # A payment filed with the wrong amount, then changed (appType 2): the list matches the change.
    await h.send("311", decl["order"], parties)
    await h.send("411", edit(decl["payment"], amountPaid="0.01"), parties)
    await h.send("411", edit(decl["payment"], guid=h.builder.guid(), appType="2"), parties)
    await h.send("511", decl["waybill"], parties)
    again = edit(decl["inventory"], guid=h.builder.guid())
    await h.send("621", again, parties)
    assert statuses(await h.wait_for(again.head["guid"], "800")) == ["120", "399", "800"]
    assert statuses(h.window.for_guid(decl["inventory"].head["guid"])) == []
    # A released list cannot be deleted or changed, only cancelled.
    for app_type in ("2", "3"):
        late = edit(decl["inventory"], guid=h.builder.guid(), appType=app_type)
        await h.send("621", late, parties)
        (r,) = await h.wait_for(late.head["guid"], "100")
        assert r["returnInfo"].startswith("-621012 the list is released")
    # Deleting a waybill that was never filed.
    stray = edit(h.builder.declaration(parties)["waybill"], appType="3")
    await h.send("511", stray, parties)
    (s,) = await h.wait_for(stray.head["guid"], "100")
    assert s["returnInfo"].startswith("-504014 no waybill")
