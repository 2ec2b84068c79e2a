"""The customs stand-in's export matching (CEB.md §8.2–8.3): every disagreement between a list and
its order, collection and waybill is refused (604 100) naming the field, both values and the code."""

from __future__ import annotations

import pytest

from tests.fixtures.mock_customs import edit, edit_line, invt_no, of_type, running, statuses


async def _refused(h, decl, p) -> str:
    await h.export(decl, p)
    answers = await h.wait_for(decl["inventory"].head["guid"], "100")
    assert statuses(answers) == ["120", "100"]  # entered, then refused at the match
    return answers[-1]["returnInfo"]


@pytest.mark.parametrize("field, value", [("qty", "7"), ("price", "1.23"), ("totalPrice", "999.00"),
                                          ("unit", "035"), ("currency", "502"), ("itemName", "别的商品")])
async def test_each_line_mismatch_is_named(h, field, value):
    p = h.xbuilder.parties(industry="machinery")
    d = h.xbuilder.declaration(p, order_type="E")
    d["inventory"] = edit_line(d["inventory"], 0, **{field: value})
    info = await _refused(h, d, p)
    order_value = d["order"].lines[0][field]
    assert info.startswith("-621051") and f"list gnum 1 {field} {value} ≠ order {field} {order_value}" in info


async def test_lines_are_matched_one_to_one_by_gnum(h):
    p = h.xbuilder.parties(industry="machinery")
    d = h.xbuilder.declaration(p, order_type="B", lines=2)
    d["inventory"] = type(d["inventory"])(d["inventory"].kind, d["inventory"].head, d["inventory"].lines[:1], {})
    info = await _refused(h, d, p)
    assert "-621051 order gnum 2 has no list line" in info


async def test_the_consignor_must_be_the_orders_seller(h):
    p = h.xbuilder.parties()
    d = h.xbuilder.declaration(p, order_type="B")
    d["inventory"] = edit(d["inventory"], ebcCode="3301960ZZZ")
    info = await _refused(h, d, p)
    assert f"-621052 list ebcCode 3301960ZZZ ≠ order ebcCode {d['order'].head['ebcCode']}" in info


@pytest.mark.parametrize("charge", ["0.00", "99999.00"])
async def test_a_collection_outside_its_bound_is_refused(h, charge):
    p = h.xbuilder.parties()
    d = h.xbuilder.declaration(p, order_type="E")
    d["collection"] = edit(d["collection"], charge=charge)
    info = await _refused(h, d, p)
    assert info.startswith("-621053") and f"collection charge {charge} is not within 0 < charge ≤" in info


async def test_a_collection_in_another_currency_is_refused(h):
    p = h.xbuilder.parties()
    d = h.xbuilder.declaration(p, order_type="E")
    d["collection"] = edit(d["collection"], currency="502")
    info = await _refused(h, d, p)
    assert f"-621053 collection currency 502 ≠ order currency {d['order'].head['currency']}" in info


async def test_trade_mode_must_go_with_order_type(h):
    p = h.xbuilder.parties()
    d = h.xbuilder.declaration(p, order_type="B")
    d["inventory"] = edit(d["inventory"], tradeMode="9610")
    info = await _refused(h, d, p)
    assert info.startswith("-621054") and "tradeMode 9610 does not go with order orderType B" in info


async def test_b_and_w_lists_match_without_a_collection_and_an_e_list_times_out_without_one(window):
    async with running(window, match_wait=0.3) as h:
        p = h.xbuilder.parties()
        for kind in ("B", "W"):
            d = h.xbuilder.declaration(p, order_type=kind)
            await h.export(d, p)
            await h.wait_for(d["inventory"].head["guid"], "399")
        e = h.xbuilder.declaration(p, order_type="E")
        await h.export(e, p, order=("order", "waybill", "inventory"))
        answers = await h.wait_for(e["inventory"].head["guid"], "100")
        assert answers[-1]["returnInfo"].startswith("-621055") and "collection (收款单)" in answers[-1]["returnInfo"]


async def test_one_live_list_per_order_and_per_waybill(h):
    p = h.xbuilder.parties()
    d = h.xbuilder.declaration(p, order_type="B")
    await h.export(d, p)
    await h.wait_for(d["inventory"].head["guid"], "399")
    again = h.xbuilder.inventory(d["order"], d["waybill"], p)  # another copNo, same order and waybill
    await h.send("603", again, p)
    [refused] = await h.wait_for(again.head["guid"], "100")
    assert refused["returnInfo"].startswith("-621004") and "already has a live list" in refused["returnInfo"]
    assert refused["invtNo"] == ""  # never entered: no number
    other = h.xbuilder.declaration(p, order_type="B")
    same_waybill = edit(other["inventory"], logisticsCode=d["waybill"].head["logisticsCode"],
                        logisticsNo=d["waybill"].head["logisticsNo"])
    await h.send("303", other["order"], p)
    await h.send("603", same_waybill, p)
    [refused] = await h.wait_for(same_waybill.head["guid"], "100")
    assert refused["returnInfo"].startswith("-621004") and "waybill" in refused["returnInfo"]
    repeat = edit(d["inventory"], guid=h.xbuilder.guid())  # the same (agentCode, copNo) again
    await h.send("603", repeat, p)
    [refused] = await h.wait_for(repeat.head["guid"], "100")
    assert refused["returnInfo"].startswith("-621004") and "copNo" in refused["returnInfo"]


async def test_a_foreign_platform_order_is_found_by_its_seller(h):
    p = h.xbuilder.parties(foreign_platform=True)
    d = h.xbuilder.declaration(p, order_type="E")
    assert d["inventory"].head["ebpCode"] == "无"
    await h.export(d, p)
    await h.wait_for(d["inventory"].head["guid"], "399")


async def test_a_dishonest_seller_goes_to_manual_review(h):
    p = h.xbuilder.parties()
    h.window.enterprises[p.ebc.code] = {"code": p.ebc.code, "creditRating": "dishonest"}
    d = h.xbuilder.declaration(p, order_type="B")
    await h.export(d, p)
    guid = d["inventory"].head["guid"]
    await h.wait_for(guid, "300")
    number = invt_no(h, d)
    r = await h.admin("POST", "/_admin/export/review", json={"invtNo": number, "release": False, "note": "抽查不符"})
    assert r.status_code == 200 and r.json()["state"] == "rejected"
    answers = await h.wait_for(guid, "100")
    assert statuses(answers) == ["120", "300", "100"] and answers[-1]["returnInfo"].startswith("-621056")
    r = await h.admin("POST", "/_admin/export/review", json={"invtNo": number, "release": True})
    assert r.status_code == 409


async def test_deleting_documents_that_are_not_there(h):
    p = h.xbuilder.parties()
    d = h.xbuilder.declaration(p, order_type="E")
    for code, kind, missing in (("303", "order", "-301009"), ("403", "collection", "-401006"),
                                ("505", "waybill", "-504014")):
        gone = edit(d[kind], appType="3")
        await h.send(code, gone, p)
        [refused] = await h.wait_for(gone.head["guid"], "100")
        assert refused["returnInfo"].startswith(missing)
    assert statuses(of_type(h.window.returns(), "304")) == ["100"]
