"""Tax, FX and inspection on export (CEB.md §8.4 regulators table), each fed as the window would:
the filings, and customs' CEB792 summary results taken from a customs run."""

from __future__ import annotations

import asyncio
import time

from mock_customs.fx import Fx
from mock_customs.inspection import Inspection
from mock_customs.tax import Tax
from tests.fixtures.mock_customs import declared, edit, edit_line, invt_no, of_type, released, running, statuses


async def _customs_run(window):
    """Three released B lists and one A list through customs, summarised: (builder, parties, decls, 792 bodies, 509s)."""
    async with running(window) as h:
        p = h.xbuilder.parties(industry="textiles")
        ship = h.xbuilder.shipment()
        decls = [await declared(h, p, order_type="B", statistics_flag="B", shipment=ship, lines=2) for _ in range(3)]
        a = await declared(h, p, order_type="B", statistics_flag="A", shipment=ship)
        await released(h, [*decls, a], p)
        for d in (*decls, a):
            invt_no(h, d)
        departure = h.xbuilder.departure([*decls, a], p)
        await h.send("509", departure, p)
        await h.wait_for(a["inventory"].head["guid"], "899")
        summary = h.xbuilder.summary([d["inventory"] for d in decls], p)
        await h.send("701", summary, p)
        deadline = time.monotonic() + 5
        while len(h.window.raw_results()) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        return h.xbuilder, p, decls, a, h.window.raw_results(), departure


async def test_the_refund_ledger_shows_b_lines_once_declared_and_departed(window):
    xb, p, decls, a, results, departure = await _customs_run(window)
    async with running(window, Tax) as h:
        h.xbuilder = xb
        for d in (*decls, a):
            await h.send("603", d["inventory"], p)
        await h.deliver(results[0])  # the declaration built: lines, no entryId yet
        ledger = (await h.admin("GET", f"/refunds/{p.ebc.code}")).json()
        assert ledger["counts"] == {"refundable": 0, "awaiting exit": 0, "awaiting declaration": 6}
        await h.deliver(results[1])  # entryId
        await h.send("509", departure, p)
        ledger = (await h.admin("GET", f"/refunds/{p.ebc.code}")).json()
        assert ledger["counts"]["refundable"] == 6
        named = {(line["invtNo"], line["gnum"]) for line in ledger["lines"]}
        assert named == {(d["inventory"].meta["invtNo"], x["gnum"]) for d in decls for x in d["inventory"].lines}  # never the A list
        line = ledger["lines"][0]
        source = next(x for d in decls if d["inventory"].meta["invtNo"] == line["invtNo"] for x in d["inventory"].lines if x["gnum"] == line["gnum"])
        assert line["itemName"] == (source.get("itemName") or source["gname"]) and line["totalPrice"] == source["totalPrice"]
        assert line["entryId"] and line["gseqno"] and line["leaveTime"]
        total = sum(float(x["totalPrice"]) for d in decls for x in d["inventory"].lines)
        assert abs(sum(float(v) for v in ledger["refundableFob"].values()) - total) < 0.01
        state = (await h.admin("GET", "/_admin/state")).json()["exportRefunds"]
        assert state["counts"]["aLists"] == 1 and state["counts"]["bLists"] == 3
        assert (await h.admin("GET", f"/refunds/{p.ebc.code}", token=None)).status_code in (401, 403)


async def test_a_line_departed_but_not_yet_entered_awaits_its_declaration(window):
    _, p, decls, _, results, departure = await _customs_run(window)
    async with running(window, Tax) as h:
        for d in decls:
            await h.send("603", d["inventory"], p)
        await h.send("509", departure, p)
        await h.deliver(results[0])
        ledger = (await h.admin("GET", f"/refunds/{p.ebc.code}")).json()
        assert ledger["counts"]["awaiting declaration"] == 6 and ledger["refundableFob"] == {}


async def test_fx_matches_collections_against_export_value_and_entry_id(window):
    xb, p, decls, _, results, _ = await _customs_run(window)
    async with running(window, Fx) as h:
        exact = decls[0]
        value = sum(float(x["totalPrice"]) for x in exact["inventory"].lines) + float(exact["inventory"].head["freight"]) \
            + float(exact["inventory"].head["insuredFee"])
        paid = xb.collection(exact["order"], p, charge=f"{value:.2f}")
        await h.send("403", paid, p)  # before the list: unmatched for now
        [first] = await h.wait_for(paid.head["guid"], "120")
        assert first["receipt"] == "CEB404Message" and "unmatched collection" in first["returnInfo"]
        await h.send("603", exact["inventory"], p)
        answers = await _answers(h, paid.head["guid"], 2)
        assert statuses(answers) == ["120", "120"] and answers[1]["returnInfo"].startswith("fx: matched")
        short = decls[1]
        await h.send("603", short["inventory"], p)
        low = xb.collection(short["order"], p, charge="1.00")
        await h.send("403", low, p)
        [flagged] = await h.wait_for(low.head["guid"], "120")
        assert flagged["returnInfo"].startswith("fx: flagged: under-received: charge 1.00")
        other = xb.collection(decls[2]["order"], p, currency="303")
        await h.send("603", decls[2]["inventory"], p)
        await h.send("403", other, p)
        [mismatch] = await h.wait_for(other.head["guid"], "120")
        assert "currency mismatch" in mismatch["returnInfo"]
        for body in results:
            await h.deliver(body)
        state = (await h.admin("GET", "/_admin/state")).json()["export"]
        rows = {row["order"]: row for row in state["orders"]}
        assert rows[exact["order"].head["orderNo"]]["verdict"] == "matched"
        assert rows[short["order"].head["orderNo"]]["flagged"] is True
        assert all(rows[d["order"].head["orderNo"]]["entryId"] for d in decls)
        assert state["flagged"] == 2


async def _answers(h, guid: str, count: int):
    deadline = time.monotonic() + 5
    while len(got := h.window.for_guid(guid)) < count:
        assert time.monotonic() < deadline, got
        await asyncio.sleep(0.02)
    return got


async def test_inspection_clears_refuses_and_inspects_on_site(window):
    async with running(window, Inspection, inspection_delay=0.05) as h:
        p = h.xbuilder.parties(industry="handicrafts")
        clean = h.xbuilder.declaration(p, order_type="B")
        clean["inventory"] = edit_line(clean["inventory"], 0, gcode="6913100000", gname="青花瓷手绘花瓶摆件")
        banned = h.xbuilder.declaration(p, order_type="B")
        banned["inventory"] = edit_line(banned["inventory"], 0, gname="象牙雕刻摆件")
        wicker = h.xbuilder.declaration(p, order_type="B")
        wicker["inventory"] = edit_line(wicker["inventory"], 0, gcode="4602193000", gname="手工柳编收纳篮")
        for d in (clean, banned, wicker):
            await h.send("603", d["inventory"], p)
        [ok] = await h.wait_for(clean["inventory"].head["guid"], "399")
        assert ok["receipt"] == "CEB604Message" and ok["returnInfo"] == "inspection: cleared"
        [no] = await h.wait_for(banned["inventory"].head["guid"], "100")
        assert no["returnInfo"].startswith("-621502 inspection: export prohibited: line 1")
        [later] = await h.wait_for(wicker["inventory"].head["guid"], "120")
        assert "to be inspected on site" in later["returnInfo"]
        await h.send("507", h.xbuilder.arrival([wicker, clean], p), p)
        answers = await h.wait_for(wicker["inventory"].head["guid"], "399")
        assert statuses(answers) == ["120", "500", "399"] and "on site" in answers[1]["returnInfo"]
        assert statuses(h.window.for_guid(clean["inventory"].head["guid"])) == ["399"]


async def test_inspection_narrows_on_producer_and_destination(window):
    async with running(window, Inspection) as h:
        p = h.xbuilder.parties(industry="farm")
        tea = h.xbuilder.declaration(p, order_type="B")
        tea["inventory"] = edit(edit_line(tea["inventory"], 0, gcode="0902101000", gname="西湖龙井绿茶", country="502"),
                                ownerCode="NO")
        registered = h.xbuilder.declaration(p, order_type="B")
        registered["inventory"] = edit(edit_line(registered["inventory"], 0, gcode="0902101000", gname="西湖龙井绿茶",
                                                 country="502"), ownerCode="3301960AAA")
        for d in (tea, registered):
            await h.send("603", d["inventory"], p)
        [held] = await h.wait_for(tea["inventory"].head["guid"], "120")
        assert "not registered for export food" in held["returnInfo"]
        await h.wait_for(registered["inventory"].head["guid"], "399")
        assert of_type(h.window.returns(), "604")
