"""The customs stand-in's export summaries (CEB.md §8.3–8.4): a 701 over released B lists → 702 399
with a sumNo, then CEB792 summary results (lines → gseqno, later entryId); refusals name the list."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from tests.fixtures.mock_customs import declared, edit, invt_no, of_type, released


async def _released_b(h, p, n: int, **kw):
    ship = h.xbuilder.shipment()
    decls = [await declared(h, p, order_type="B", statistics_flag="B", shipment=ship, **kw) for _ in range(n)]
    await released(h, decls, p)
    for d in decls:
        invt_no(h, d)
    return decls


async def _results(h, count: int, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while len(h.window.results()) < count:
        assert time.monotonic() < deadline, f"{len(h.window.results())} CEB792 of {count}"
        await asyncio.sleep(0.02)
    return h.window.results()


async def test_a_summary_of_three_b_lists_becomes_one_declaration(h):
    p = h.xbuilder.parties(industry="handicrafts")
    decls = await _released_b(h, p, 3, lines=2)
    lists = [d["inventory"] for d in decls]
    summary = h.xbuilder.summary(lists, p)
    await h.send("701", summary, p)
    [answer] = await h.wait_for(summary[0].head["guid"], "399")
    assert answer["receipt"] == "CEB702Message" and len(answer["sumNo"]) == 18
    (built, lines), (entered, none) = await _results(h, 2)
    assert built["sumNo"] == entered["sumNo"] == answer["sumNo"] and built["declSeqNo"] == entered["declSeqNo"]
    assert "entryId" not in built and len(entered["entryId"]) == 18 and entered["decState"] == "10" and none == []
    named = {(line["invtNo"], line["gnum"]) for line in lines}
    assert named == {(invt_no(h, d), line["gnum"]) for d in decls for line in d["inventory"].lines}
    assert all(line["logisticsNo"] == next(d["waybill"].head["logisticsNo"] for d in decls if invt_no(h, d) == line["invtNo"])
               for line in lines)
    # itemNameFlag 1: one item per (gcode, item name)
    items = {(x.get("itemName") or x["gname"], x["gcode"]) for d in decls for x in d["inventory"].lines}
    assert len({line["gseqno"] for line in lines}) == len(items)
    assert Decimal(built["grossWeight"]) == sum(Decimal(x.head["grossWeight"]) for x in lists)
    assert Decimal(built["netWeight"]) == sum(Decimal(x.head["netWeight"]) for x in lists)
    assert all(h.customs.exports.by_invt[invt_no(h, d)].sum_no == answer["sumNo"] for d in decls)
    # a list in a live summary is not cancelled, nor summarised twice
    cancel = h.xbuilder.cancel(lists[0], p, invt_no(h, decls[0]))
    await h.send("605", cancel, p)
    [refused] = await h.wait_for(cancel.head["guid"], "100")
    assert refused["returnInfo"].startswith("-623005") and "in summary" in refused["returnInfo"]
    again = h.xbuilder.summary(lists[:1], p)
    await h.send("701", again, p)
    [refused] = await h.wait_for(again[0].head["guid"], "100")
    assert refused["returnInfo"].startswith("-701004") and "already in summary" in refused["returnInfo"]


async def test_summary_flag_2_splits_per_producer_and_item_name_flag_0_groups_by_gcode(h):
    p = h.xbuilder.parties(industry="farm")
    ship = h.xbuilder.shipment()
    decls = []
    for owner in ("3301960AAA", "3301960AAA", "3301960BBB"):
        d = h.xbuilder.declaration(p, order_type="B", statistics_flag="B", shipment=ship)
        d["inventory"] = edit(d["inventory"], ownerCode=owner)
        await h.export(d, p)
        await h.wait_for(d["inventory"].head["guid"], "399")
        decls.append(d)
    await released(h, decls, p)
    summary = h.xbuilder.summary([d["inventory"] for d in decls if invt_no(h, d)], p, summary_flag="2", item_name_flag="0")
    await h.send("701", summary, p)
    await h.wait_for(summary[0].head["guid"], "399")
    results = await _results(h, 4)
    built = [(head, lines) for head, lines in results if "entryId" not in head]
    assert len(built) == 2 and len({head["declSeqNo"] for head, _ in built}) == 2
    by_size = sorted(len({line["invtNo"] for line in lines}) for _, lines in built)
    assert by_size == [1, 2]
    for _, lines in built:  # itemNameFlag 0: one item per gcode
        assert len({line["gseqno"] for line in lines}) == len({line["gcode"] for line in lines})


async def test_an_a_list_is_refused_in_a_summary(h):
    p = h.xbuilder.parties()
    ship = h.xbuilder.shipment()
    b = await declared(h, p, order_type="B", statistics_flag="B", shipment=ship)
    a = await declared(h, p, order_type="B", statistics_flag="A", shipment=ship)
    await released(h, [a, b], p)
    invt_no(h, a), invt_no(h, b)
    summary = h.xbuilder.summary([invt_no(h, b), invt_no(h, a)], p, customsCode=b["inventory"].head["customsCode"])
    await h.send("701", summary, p)
    [refused] = await h.wait_for(summary[0].head["guid"], "100")
    assert refused["returnInfo"] == f"-701004 list {invt_no(h, a)} is statisticsFlag A, not B (simplified lists are not summarised)"
    assert h.customs.exports.by_invt[invt_no(h, b)].sum_no is None and not h.window.results()


async def test_a_list_not_released_or_unknown_is_refused(h):
    p = h.xbuilder.parties()
    d = await declared(h, p, order_type="B", statistics_flag="B")
    invt_no(h, d)
    summary = h.xbuilder.summary([d["inventory"], "29912024E000000001"], p)
    await h.send("701", summary, p)
    [refused] = await h.wait_for(summary[0].head["guid"], "100")
    info = refused["returnInfo"]
    assert f"-701004 list {invt_no(h, d)} is concluded, not released" in info and "-701003 no list numbered 29912024E000000001" in info


async def test_a_time_window_takes_every_released_b_list_of_the_seller(h):
    p = h.xbuilder.parties()
    decls = await _released_b(h, p, 2)
    times = sorted(d["inventory"].head["appTime"] for d in decls)
    summary = h.xbuilder.summary([], p, window=(times[0], times[-1]),
                                 customsCode=decls[0]["inventory"].head["customsCode"])
    await h.send("701", summary, p)
    await h.wait_for(summary[0].head["guid"], "399")
    (_, lines), _ = await _results(h, 2)
    assert {line["invtNo"] for line in lines} == {invt_no(h, d) for d in decls}


async def test_a_split_summary_waits_for_all_its_parts(h):
    p = h.xbuilder.parties()
    decls = await _released_b(h, p, 2)
    first, second = h.xbuilder.summary([d["inventory"] for d in decls], p, per_part=1)
    await h.send("701", first, p)
    await asyncio.sleep(0.1)
    assert not of_type(h.window.returns(), "702")
    await h.send("701", second, p)
    await h.wait_for(second.head["guid"], "399")
    answers = of_type(h.window.returns(), "702")
    assert sorted(r["msgSeqNo"] for r in answers) == ["1", "2"] and len({r["sumNo"] for r in answers}) == 1


def test_a_792_is_laned_by_declaration_and_never_merged():
    from lxml import etree

    from mock_customs.export_wire import ResultPart, summary_result_xml
    from mock_customs.sender import _merge_group, receipt_keys

    body = summary_result_xml([ResultPart({"declSeqNo": "E20240101000000001", "guid": "G" * 36}, [])]).encode()
    assert receipt_keys(body) == ("declSeqNo:E20240101000000001",)
    assert _merge_group(etree.fromstring(body)) == ""  # a message of its own, not a receipt to merge
