"""The customs stand-in against a fake window (tests/fixtures/mock_customs.py): a clean declaration
released in order, receipts for every other document, and the 三单对碰 match of order, payment,
waybill and list: each mismatch refused naming its fields, a missing document refused after the
match wait, a second list a duplicate."""

from __future__ import annotations

import asyncio

import pytest

from schemas.builder import Doc
from tests.fixtures.mock_customs import FakeWindow, Harness, edit, edit_line, running, statuses


# ---------------------------------------------------------------------- the happy path
async def test_clean_declaration_is_released_in_order(h: Harness) -> None:
    parties = h.builder.parties()
    decl = h.builder.declaration(parties, lines=2)
    await h.declare(decl, parties)
    inv = decl["inventory"].head
    got = await h.wait_for(inv["guid"], "800")
    assert statuses(got) == ["120", "399", "800"]
    invt_no = got[0]["invtNo"]
    assert len(invt_no) == 18 and invt_no[:4] == inv["customsCode"] and invt_no[4:8] == inv["declTime"][:4]
    assert invt_no[8] == "I" and invt_no[9:].isdigit()
    assert {r["invtNo"] for r in got} == {invt_no} and {r["receipt"] for r in got} == {"CEB622Message"}
    assert got[0]["preNo"] == "0" * 18
    for kind, receipt in (("order", "CEB312Message"), ("payment", "CEB412Message"), ("waybill", "CEB512Message")):
        (r,) = h.window.for_guid(decl[kind].head["guid"])
        assert (r["receipt"], r["returnStatus"]) == (receipt, "120")
    state = (await h.admin("GET", "/_admin/state")).json()
    assert state["counts"]["listsByState"] == {"released": 1}
    assert state["accounts"][inv["buyerIdNumber"]] == {inv["declTime"][:4]: decl["order"].head["acturalPaid"]}
    assert state["received"]["documents"] == 4


async def test_every_other_document_gets_its_own_valid_120(h: Harness) -> None:
    parties = h.builder.parties()
    decl = h.builder.declaration(parties, trade_mode="9610")
    status = h.builder.waybill_status(decl["waybill"], parties)
    arrival = h.builder.delivery([decl["waybill"]], parties)
    await h.send("513", status, parties)
    await h.send("711", arrival, parties, dxp=False)
    (s,) = await h.wait_for(status.head["guid"], "120")
    (a,) = await h.wait_for(arrival.head["guid"], "120")
    assert s["receipt"] == "CEB514Message" and a["receipt"] == "CEB712Message"
    assert len(a["rkdNo"]) == 18


async def test_documents_in_any_order_list_first(h: Harness) -> None:
    parties = h.builder.parties()
    decl = h.builder.declaration(parties)
    await h.declare(decl, parties, order=("inventory", "waybill", "payment"))
    await asyncio.sleep(0.1)
    assert h.window.for_guid(decl["inventory"].head["guid"]) == []  # still waiting for the order
    await h.send("311", decl["order"], parties)
    got = await h.wait_for(decl["inventory"].head["guid"], "800")
    assert statuses(got) == ["120", "399", "800"]


async def test_many_documents_in_one_message_share_one_receipt(h: Harness) -> None:
    parties = h.builder.parties()
    orders = [h.builder.order(parties) for _ in range(5)]
    r = await h.send("311", orders, parties)
    assert r.json() == {"received": 5, "duplicates": 0}
    await h.wait_for(orders[-1].head["guid"], "120")
    assert len(h.window.receipts) == 1
    assert [x["guid"] for x in h.window.returns()] == [o.head["guid"] for o in orders]


# ---------------------------------------------------------------------- 三单对碰 mismatches
def _mismatch(case: str, decl: dict[str, Doc]) -> tuple[dict[str, Doc], list[str]]:
    o, p, w, i = (decl[k] for k in ("order", "payment", "waybill", "inventory"))
    if case == "amount":
        return {**decl, "payment": edit(p, amountPaid="1.00")}, [
            f"-621041 order acturalPaid {o.head['acturalPaid']} ≠ payment amountPaid 1.00"]
    if case == "consignee":
        return {**decl, "waybill": edit(w, consignee="路人甲", consigneeTelephone="13800000000")}, [
            f"-621042 order consignee {o.head['consignee']} ≠ waybill consignee 路人甲",
            f"-621042 order consigneeTelephone {o.head['consigneeTelephone']} ≠ waybill consigneeTelephone 13800000000"]
    if case == "address":
        return {**decl, "waybill": edit(w, consigneeAddress="别处")}, [
            f"-621042 order consigneeAddress {o.head['consigneeAddress']} ≠ waybill consigneeAddress 别处"]
    if case == "gname":
        return {**decl, "inventory": edit_line(i, 0, gname="别的商品")}, [
            f"-621043 list gnum 1 gname 别的商品 ≠ order itemName {o.lines[0]['itemName']}"]
    if case == "qty":
        return {**decl, "inventory": edit_line(i, 1, qty="99")}, [
            f"-621043 list gnum 2 qty 99 ≠ order qty {o.lines[1]['qty']}"]
    if case == "gnum":
        return {**decl, "inventory": edit_line(i, 1, gnum="3")}, [
            "-621043 list gnum 3 has no order line", "-621043 order gnum 2 has no list line"]
    if case == "buyer":
        return {**decl, "inventory": edit(i, buyerName="冒名者")}, [
            f"-621044 list buyerName 冒名者 ≠ order buyerName {o.head['buyerName']}"]
    if case == "payer":
        return {**decl, "payment": edit(p, payerName="代付人")}, [
            f"-621045 payment payerName 代付人 ≠ order buyerName {o.head['buyerName']}"]
    if case == "payer_id":
        return {**decl, "payment": edit(p, payerIdNumber="11010519491231002X")}, [
            "-621045 payment payerIdNumber 1101**********002X ≠ order buyerIdNumber"]
    if case == "waybill_order":
        return {**decl, "waybill": edit(w, orderNo="SO-OTHER")}, [
            f"-621046 waybill orderNo SO-OTHER ≠ list orderNo {i.head['orderNo']}"]
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["amount", "consignee", "address", "gname", "qty", "gnum", "buyer", "payer",
                                  "payer_id", "waybill_order"])
async def test_mismatch_is_refused_naming_the_fields(h: Harness, case: str) -> None:
    parties = h.builder.parties()
    decl, expected = _mismatch(case, h.builder.declaration(parties, lines=2))
    await h.declare(decl, parties)
    got = await h.wait_for(decl["inventory"].head["guid"], "100")
    assert statuses(got) == ["100"] and "invtNo" not in got[0]
    info = got[0]["returnInfo"]
    for part in expected:
        assert part in info, info
    assert info.startswith(expected[0][:7])
    state = (await h.admin("GET", "/_admin/state")).json()
    assert state["counts"]["listsByState"] == {"rejected": 1} and state["accounts"] == {}


async def test_seller_on_the_list_not_the_orders_is_refused(h: Harness) -> None:
    parties = h.builder.parties()
    decl = h.builder.declaration(parties)
    other = h.builder.parties().ebc.code
    decl["inventory"] = edit(decl["inventory"], ebcCode=other)
    await h.declare(decl, parties)
    (got,) = await h.wait_for(decl["inventory"].head["guid"], "100")
    assert f"-621046 list ebcCode {other} ≠ order ebcCode {parties.ebc.code}" in got["returnInfo"]


async def test_missing_document_refused_after_match_wait(window: FakeWindow) -> None:
    async with running(window, match_wait=0.2) as h:
        parties = h.builder.parties()
        decl = h.builder.declaration(parties)
        await h.declare(decl, parties, order=("order", "payment", "inventory"))
        (got,) = await h.wait_for(decl["inventory"].head["guid"], "100")
        w = decl["waybill"].head
        assert got["returnInfo"] == (f"-621047 not received within 0.2 s: waybill (logisticsCode {w['logisticsCode']}, "
                                     f"logisticsNo {w['logisticsNo']})")
        # The waybill arriving late does not revive a refused list; a changed list (appType 2) is matched anew.
        await h.send("511", decl["waybill"], parties)
        again = edit(decl["inventory"], guid=h.builder.guid(), appType="2")
        await h.send("621", again, parties)
        assert statuses(await h.wait_for(again.head["guid"], "800")) == ["120", "399", "800"]


async def test_second_list_for_the_same_order_is_a_duplicate(h: Harness) -> None:
    parties = h.builder.parties()
    decl = h.builder.declaration(parties)
    await h.declare(decl, parties)
    await h.wait_for(decl["inventory"].head["guid"], "120")
    second = edit(decl["inventory"], guid=h.builder.guid())
    await h.send("621", second, parties)
    (got,) = await h.wait_for(second.head["guid"], "100")
    assert got["returnInfo"].startswith("-621004 ")
