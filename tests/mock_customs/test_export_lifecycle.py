"""The customs stand-in's export lifecycle (CEB.md §8.4): 三单, list, 总分单, arrival, departure,
cancellation, returns and split filings, each answered with receipts valid under the official export.xsd."""

from __future__ import annotations

import asyncio
import re

from tests.fixtures.mock_customs import declared, invt_no, of_type, released, statuses


async def test_a_9610_declaration_runs_from_order_to_closed(h):
    p = h.xbuilder.parties(industry="textiles")
    d = h.xbuilder.declaration(p, order_type="E", trade_mode="9610", statistics_flag="B", with_transport=False)
    await h.export(d, p)
    guid = d["inventory"].head["guid"]
    await h.wait_for(guid, "399")
    await released(h, [d], p, depart=True)
    got = h.window.returns()
    assert statuses(of_type(got, "304")) == ["120"] and statuses(of_type(got, "404")) == ["120"]
    assert statuses(of_type(got, "506")) == ["399"]
    assert statuses(of_type(got, "608")) == ["120"] and statuses(of_type(got, "508")) == ["399"]
    assert statuses(of_type(got, "510")) == ["399"]
    assert statuses(h.window.for_guid(guid)) == ["120", "399", "800", "899"]
    number = invt_no(h, d)
    assert re.fullmatch(rf"{d['inventory'].head['customsCode']}\d{{4}}E\d{{9}}", number) and len(number) <= 20
    case = h.customs.exports.by_invt[number]
    assert case.state == "closed" and case.bill["billNo"]  # the master bill came from the 607
    state = (await h.admin("GET", "/_admin/state")).json()
    assert state["export"]["counts"]["listsByState"] == {"closed": 1}


async def test_a_9710_b2b_list_needs_no_collection(h):
    p = h.xbuilder.parties(industry="machinery")
    d = await declared(h, p, order_type="B", statistics_flag="B")
    assert "collection" not in d and d["inventory"].head["tradeMode"] == "9710"
    await released(h, [d], p)
    assert statuses(h.window.for_guid(d["inventory"].head["guid"])) == ["120", "399", "800"]


async def test_a_9810_overseas_warehouse_order_is_released(h):
    p = h.xbuilder.parties(industry="farm")
    d = await declared(h, p, order_type="W", statistics_flag="B")
    assert d["order"].head["orderType"] == "W" and d["inventory"].head["tradeMode"] == "9810"
    await released(h, [d], p, depart=True)
    assert h.customs.exports.by_invt[invt_no(h, d)].state == "closed"


async def test_an_e_list_waits_for_its_collection(h):
    p = h.xbuilder.parties()
    d = h.xbuilder.declaration(p, order_type="E")
    await h.export(d, p, order=("order", "waybill", "inventory"))
    guid = d["inventory"].head["guid"]
    await h.wait_for(guid, "120")
    await asyncio.sleep(0.1)
    assert statuses(h.window.for_guid(guid)) == ["120"]  # entered, waiting for the 收款单
    await h.send("403", d["collection"], p)
    await h.wait_for(guid, "399")


async def test_cancel_before_arrival_voids_the_list(h):
    p = h.xbuilder.parties()
    d = await declared(h, p, order_type="B")
    cancel = h.xbuilder.cancel(d["inventory"], p, invt_no(h, d))
    await h.send("605", cancel, p)
    [answer] = await h.wait_for(cancel.head["guid"], "399")
    assert answer["receipt"] == "CEB606Message" and answer["invtNo"] == invt_no(h, d)
    assert h.customs.exports.by_invt[invt_no(h, d)].state == "cancelled"
    arrival = h.xbuilder.arrival([d], p)
    await h.send("507", arrival, p)
    [refused] = await h.wait_for(arrival[0].head["guid"], "100")
    assert refused["returnInfo"].startswith("-507003") and "without a live export list" in refused["returnInfo"]
    # the order is free again: a new list for it is entered
    again = h.xbuilder.inventory(d["order"], d["waybill"], p)
    await h.send("603", again, p)
    await h.wait_for(again.head["guid"], "399")


async def test_a_departed_list_cannot_be_cancelled(h):
    p = h.xbuilder.parties()
    d = await declared(h, p, order_type="B")
    await released(h, [d], p, depart=True)
    cancel = h.xbuilder.cancel(d["inventory"], p, invt_no(h, d))
    await h.send("605", cancel, p)
    [refused] = await h.wait_for(cancel.head["guid"], "100")
    assert refused["returnInfo"].startswith("-623005") and "closed" in refused["returnInfo"]
    unknown = h.xbuilder.cancel(d["inventory"], p, "2991" + "2024E" + "0" * 9)
    await h.send("605", unknown, p)
    [missing] = await h.wait_for(unknown.head["guid"], "100")
    assert missing["returnInfo"].startswith("-623003")


async def test_departure_needs_a_master_bill(h):
    p = h.xbuilder.parties()
    d = await declared(h, p, order_type="B", with_transport=False)
    await h.send("507", h.xbuilder.arrival([d], p), p)  # no 607: the list has no master bill
    await h.wait_for(d["inventory"].head["guid"], "800")
    departure = h.xbuilder.departure([d], p)
    await h.send("509", departure, p)
    [refused] = await h.wait_for(departure[0].head["guid"], "100")
    assert refused["returnInfo"].startswith("-509001") and "no master bill" in refused["returnInfo"]
    assert h.customs.exports.by_invt[invt_no(h, d)].state == "released"


async def test_departure_of_a_list_not_released_is_refused(h):
    p = h.xbuilder.parties()
    d = await declared(h, p, order_type="B", with_transport=True)
    departure = h.xbuilder.departure([d], p)
    await h.send("509", departure, p)
    [refused] = await h.wait_for(departure[0].head["guid"], "100")
    assert refused["returnInfo"].startswith("-509004") and "not released" in refused["returnInfo"]


async def test_an_arrival_without_lines_covers_the_waybills_of_its_master_bill(h):
    p = h.xbuilder.parties()
    ship = h.xbuilder.shipment()
    decls = [await declared(h, p, order_type="B", shipment=ship, with_transport=False) for _ in range(2)]
    await h.send("607", h.xbuilder.consolidation(decls, p), p)
    arrival = h.xbuilder.arrival(decls, p, bill_only=True)
    assert not arrival[0].lines and arrival[0].head["billNo"]
    await h.send("507", arrival, p)
    for d in decls:
        await h.wait_for(d["inventory"].head["guid"], "800")


async def test_a_607_line_naming_another_list_is_refused(h):
    p = h.xbuilder.parties()
    a, b = await declared(h, p, order_type="B"), await declared(h, p, order_type="B")
    invt_no(h, b)
    a["inventory"].meta["invtNo"] = invt_no(h, b)  # a's line names b's list
    waybill = h.xbuilder.consolidation([a], p, with_invt_no=True)
    await h.send("607", waybill, p)
    [refused] = await h.wait_for(waybill[0].head["guid"], "100")
    assert refused["returnInfo"].startswith("-607001") and invt_no(h, b) in refused["returnInfo"]


async def test_a_split_arrival_is_processed_when_its_last_part_arrives(h):
    p = h.xbuilder.parties()
    ship = h.xbuilder.shipment()
    decls = [await declared(h, p, order_type="B", shipment=ship) for _ in range(3)]
    parts = h.xbuilder.arrival(decls, p, per_part=1)
    assert [x.head["msgSeqNo"] for x in parts] == ["1", "2", "3"]
    for part in (parts[2], parts[0]):
        await h.send("507", part, p)
    await asyncio.sleep(0.1)
    assert not of_type(h.window.returns(), "508")
    assert all(h.customs.exports.by_invt[invt_no(h, d)].state == "concluded" for d in decls)
    state = (await h.admin("GET", "/_admin/state")).json()
    assert state["export"]["splitWaiting"]["507"][0]["arrived"] == [1, 3]
    await h.send("507", parts[1], p)
    for d in decls:
        await h.wait_for(d["inventory"].head["guid"], "800")
    answers = of_type(h.window.returns(), "508")
    assert sorted(r["msgSeqNo"] for r in answers) == ["1", "2", "3"] and statuses(answers) == ["399"] * 3
    assert {r["guid"] for r in answers} == {x.head["guid"] for x in parts}  # each part its own answer


async def test_a_broken_split_sequence_is_refused(h):
    p = h.xbuilder.parties()
    decls = [await declared(h, p, order_type="B") for _ in range(2)]
    first, second = h.xbuilder.arrival(decls, p, per_part=1)
    await h.send("507", first, p)
    twin = type(second)(second.kind, {**second.head, "guid": h.xbuilder.guid(), "msgSeqNo": "1"}, second.lines, {})
    await h.send("507", twin, p)
    [refused] = await h.wait_for(twin.head["guid"], "100")
    assert refused["returnInfo"].startswith("-507006")
    beyond = type(second)(second.kind, {**second.head, "guid": h.xbuilder.guid(), "msgSeqNo": "3"}, second.lines, {})
    await h.send("507", beyond, p)
    [refused] = await h.wait_for(beyond.head["guid"], "100")
    assert refused["returnInfo"].startswith("-507006") and "outside" in refused["returnInfo"]
    await h.send("507", second, p)  # the real second part completes it
    await h.wait_for(second.head["guid"], "399")


async def test_a_partial_return_leaves_the_rest(h):
    p = h.xbuilder.parties(industry="textiles")
    d = await declared(h, p, order_type="B", lines=2)
    await released(h, [d], p, depart=True)
    number = invt_no(h, d)
    first_qty = d["inventory"].lines[0]["qty"]
    ret = h.xbuilder.refund(d["inventory"], p, number, gnums=[1], lines_overrides=[{"qty": "1"}])
    await h.send("213", ret, p)
    answers = await h.wait_for(ret.head["guid"], "800")
    assert statuses(answers) == ["120", "800"] and answers[0]["receipt"] == "CEB214Message"
    case = h.customs.exports.by_invt[number]
    assert case.returned == {"1": 1}
    # more than is left of line 1 is refused, naming the quantity
    too_much = h.xbuilder.refund(d["inventory"], p, number, gnums=[1], lines_overrides=[{"qty": first_qty}])
    await h.send("213", too_much, p)
    [refused] = await h.wait_for(too_much.head["guid"], "100")
    assert refused["returnInfo"].startswith("-625052") and "already returned" in refused["returnInfo"]
    wrong = h.xbuilder.refund(d["inventory"], p, number, gnums=[2], lines_overrides=[{"gmodel": "另一型号"}])
    await h.send("213", wrong, p)
    [refused] = await h.wait_for(wrong.head["guid"], "100")
    assert refused["returnInfo"].startswith("-625051") and "gmodel" in refused["returnInfo"]
    tally = h.xbuilder.tally(ret, p)
    await h.send("215", tally, p)
    [tallied] = await h.wait_for(tally.head["guid"], "399")
    assert tallied["receipt"] == "CEB216Message"


async def test_a_return_of_goods_not_exported_is_refused(h):
    p = h.xbuilder.parties()
    d = await declared(h, p, order_type="B")
    ret = h.xbuilder.refund(d["inventory"], p, invt_no(h, d))
    await h.send("213", ret, p)
    [refused] = await h.wait_for(ret.head["guid"], "100")
    assert refused["returnInfo"].startswith("-625022")
