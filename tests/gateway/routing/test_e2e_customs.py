"""End to end through the real window: filings routed to the regulator stand-ins (customs, inspection,
tax, fx mounted at /mock), their CEB receipts posted back, and each declaration's overall state as
``GET /v1/declarations/{ebpCode}/{orderNo}`` shows it -- all over HTTP, on SQLite or PostgreSQL.

The stand-ins run with the test settings (``MOCK_ENV`` in tests/fixtures/server.py): customs waits
4 s for a list's documents and steps 120 -> 399 -> 800 0.05 s apart, inspection holds restricted goods
for 0.3 s.

Customs: the clean path, 三单对碰 mismatches, the per-transaction and annual limits, cancellation,
and documents filed in any order."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from schemas.builder import Doc, MessageBuilder, money
from schemas.identifiers import make_id_number
from tests.fixtures.declarations import (
    CARDIGAN,
    CLEANSER,
    CORE,
    HANDBAG,
    TIMEOUT,
    changed,
    changed_line,
    deliveries,
    file_docs,
    goods_declaration,
    has_tax_bill,
    in_parallel,
    invt_no_of,
    receipts_of,
    verdict,
    view,
    wait_for,
    wait_state,
)


# ---------------------------------------------------------------------- 1. the clean path
def test_clean_declaration_is_released_and_every_firm_hears(swx, builder, cast):
    firms, parties = cast
    decl = goods_declaration(builder, parties, [(CLEANSER, 2, "89.00"), (CARDIGAN, 1, "599.00")], freight="10")
    order = decl["order"]
    filed_by = {"order": "ebp", "payment": "pay", "waybill": "logistics", "inventory": "agent"}
    guids = {kind: file_docs(swx, firms[filed_by[kind]], builder, decl, [kind])[kind] for kind in CORE}
    started = time.monotonic()
    wait_state(swx, order, "released")
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"released after {elapsed:.1f} s"
    print(f"released {elapsed:.2f} s after the list was filed")

    v = wait_for(swx, order, lambda v: has_tax_bill(v) and verdict(v, "payment", "fx") and verdict(v, "inventory", "inspection"),
                 "every regulator's verdict")
    assert v["state"] == "released" and v["reasons"] == []
    docs = v["documents"]
    assert set(docs) == set(CORE)
    assert verdict(v, "inventory", "customs")["status"] == "800" and docs["inventory"]["status"] == "800"
    invt_no = docs["inventory"]["invtNo"]
    assert invt_no and len(invt_no) == 18 and invt_no[8] == "I"
    assert verdict(v, "inventory", "inspection")["status"] == "399"
    assert verdict(v, "inventory", "inspection")["info"] == "inspection: cleared"
    for kind in ("order", "payment", "waybill"):
        assert verdict(v, kind, "customs")["status"] == "120", kind
    assert verdict(v, "payment", "fx")["status"] == "120"
    assert verdict(v, "payment", "fx")["info"].startswith("fx: recorded")
    tax = verdict(v, "inventory", "tax")
    assert Decimal(tax["detail"]["taxTotal"]) == Decimal(order.head["taxTotal"])
    assert tax["detail"]["taxNo"] == invt_no + "01" and "short" not in tax["info"]
    assert docs["order"]["amounts"]["taxTotal"] == order.head["taxTotal"]
    assert docs["order"]["amounts"]["acturalPaid"] == order.head["acturalPaid"]

    # every firm got the verdicts on what it filed or is named in, from each regulator concerned
    def heard(role: str) -> dict[str, set[str]]:
        by: dict[str, set[str]] = {}
        for r in receipts_of(swx, firms[role]):
            by.setdefault(r["from"], set()).add(r["returnStatus"])
        return by

    assert heard("ebp") == {"swx": {"2"}, "customs": {"120"}}
    assert heard("pay") == {"swx": {"2"}, "customs": {"120"}, "fx": {"120"}}
    assert heard("logistics") == {"swx": {"2"}, "customs": {"120"}}
    assert heard("ebc") == {"customs": {"120", "399", "800"}, "inspection": {"399"}}
    assert heard("agent") == {"swx": {"2"}, "customs": {"120", "399", "800"}, "inspection": {"399"}, "tax": {"tax:1"}}
    (bill,) = [r for r in receipts_of(swx, firms["agent"]) if r["from"] == "tax"]
    assert bill["receiptType"] == "CEB816Message" and invt_no in bill["xml"]

    # every delivery of these four messages reached its regulator and was answered; none died
    expected = {("order", "customs"), ("payment", "customs"), ("payment", "fx"), ("waybill", "customs"),
                ("inventory", "customs"), ("inventory", "inspection"), ("inventory", "tax")}
    by_guid = {g: k for k, g in guids.items()}

    def mine(state: str | None = None) -> list[dict]:
        return [d for d in deliveries(swx, **({"state": state} if state else {})) if d["messageGuid"] in by_guid]

    deadline = time.monotonic() + TIMEOUT
    while any(d["state"] == "pending" for d in mine()) and time.monotonic() < deadline:
        time.sleep(0.1)
    got = mine()
    assert {(by_guid[d["messageGuid"]], d["regulator"]) for d in got} == expected and len(got) == len(expected)
    assert mine("dead") == [] and mine("pending") == []
    assert {d["state"] for d in got} <= {"acknowledged", "delivered"}
    assert {(by_guid[d["messageGuid"]], d["regulator"]) for d in mine("acknowledged")} == expected  # each one answered


# ---------------------------------------------------------------------- 2. 三单对碰 mismatches
def _mismatch(case: str, decl: dict[str, Doc], builder: MessageBuilder) -> tuple[dict[str, Doc], str, list[str]]:
    """The declaration with one document changed, the code expected and the words the reason must hold."""
    o, p, w, i = (decl[k] for k in CORE)
    if case == "amountPaid":  # a legal payment of another amount
        paid = money(Decimal(o.head["acturalPaid"]) - Decimal("1.00"))
        return {**decl, "payment": changed(p, amountPaid=paid)}, "-621041", [
            f"order acturalPaid {o.head['acturalPaid']} ≠ payment amountPaid {paid}"]
    if case == "consignee":
        return {**decl, "waybill": changed(w, consignee="路人甲")}, "-621042", [
            f"order consignee {o.head['consignee']} ≠ waybill consignee 路人甲"]
    if case == "telephone+address":
        return {**decl, "waybill": changed(w, consigneeTelephone="13800000000", consigneeAddress="浙江省杭州市别处1号")}, "-621042", [
            f"order consigneeTelephone {o.head['consigneeTelephone']} ≠ waybill consigneeTelephone 13800000000",
            f"order consigneeAddress {o.head['consigneeAddress']} ≠ waybill consigneeAddress 浙江省杭州市别处1号"]
    if case == "gname":
        return {**decl, "inventory": changed_line(i, 0, gname="别的商品")}, "-621043", [
            f"list gnum 1 gname 别的商品 ≠ order itemName {o.lines[0]['itemName']}"]
    if case == "qty":  # totalPrice follows, so that the list itself stays consistent for intake
        price = Decimal(i.lines[0]["price"])
        return {**decl, "inventory": changed_line(i, 0, qty="5", totalPrice=money(price * 5), qty1="1.5")}, "-621043", [
            f"list gnum 1 qty 5 ≠ order qty {o.lines[0]['qty']}"]
    if case == "buyerName":
        return {**decl, "inventory": changed(i, buyerName="冒名者")}, "-621044", [
            f"list buyerName 冒名者 ≠ order buyerName {o.head['buyerName']}"]
    if case == "buyerIdNumber":  # a valid ID number, someone else's
        other = make_id_number(builder.rng, "330106", "19900101")
        return {**decl, "inventory": changed(i, buyerIdNumber=other)}, "-621044", [
            f"list buyerIdNumber {other[:4]}", "≠ order buyerIdNumber"]
    if case == "payerName":
        return {**decl, "payment": changed(p, payerName="代付人")}, "-621045", [
            f"payment payerName 代付人 ≠ order buyerName {o.head['buyerName']}"]
    if case == "payerIdNumber":
        other = make_id_number(builder.rng, "110105", "19850505")
        return {**decl, "payment": changed(p, payerIdNumber=other)}, "-621045", [
            f"payment payerIdNumber {other[:4]}", "≠ order buyerIdNumber"]
    raise AssertionError(case)


MISMATCHES = ["amountPaid", "consignee", "telephone+address", "gname", "qty", "buyerName", "buyerIdNumber",
              "payerName", "payerIdNumber"]


@pytest.mark.parametrize("case", MISMATCHES)
def test_a_mismatch_rejects_naming_the_fields(swx, builder, filer, parties, case):
    decl = goods_declaration(builder, parties, [(CLEANSER, 1, "79.00"), (HANDBAG, 1, "1980.00")], freight="8")
    decl, code, words = _mismatch(case, decl, builder)
    file_docs(swx, filer, builder, decl)  # every changed document is still a legal filing
    v = wait_state(swx, decl["order"], "rejected")
    reasons = " | ".join(v["reasons"])
    assert v["reasons"][0].startswith(f"customs refused the inventory: {code} "), reasons
    for part in words:
        assert part in reasons, reasons
    assert verdict(v, "inventory", "customs")["status"] == "100"
    assert v["documents"]["inventory"]["invtNo"] is None
    # ID numbers are masked in what the firms read
    for doc in decl.values():
        for f in ("buyerIdNumber", "payerIdNumber"):
            if doc.head.get(f):
                assert doc.head[f] not in reasons


# ---------------------------------------------------------------------- 3. per-transaction limit
def test_per_transaction_limit(swx, builder, filer, parties):
    # 4,583.00 of goods: tax 4583 × 9.1 % = 417.053 -> 417.05; 4583 + 417.05 - discount 0.05 = 5,000.00 exactly
    at_limit = goods_declaration(builder, parties, [(HANDBAG, 1, "4583.00")], discount="0.05")
    assert at_limit["order"].head["taxTotal"] == "417.05" and at_limit["order"].head["acturalPaid"] == "5000.00"
    # 4,600.00 of goods: tax 418.60, paid 5,018.60 -- over
    over = goods_declaration(builder, parties, [(HANDBAG, 1, "4600.00")])
    assert over["order"].head["acturalPaid"] == "5018.60"
    for decl in (at_limit, over):
        file_docs(swx, filer, builder, decl)
    v = wait_state(swx, over["order"], "rejected")
    assert v["reasons"] == [
        "customs refused the inventory: -621005 order acturalPaid 5018.60 exceeds the per-transaction limit 5000.00"]
    assert wait_state(swx, at_limit["order"], "released")["reasons"] == []  # the limit itself is allowed


# ---------------------------------------------------------------------- 4. annual limit and a return
def test_annual_limit_across_one_buyers_orders_and_a_return_frees_quota(swx, builder, filer, parties):
    first = goods_declaration(builder, parties, [(HANDBAG, 1, "4500.00")])
    buyer = {k: first["order"].head[k] for k in ("buyerIdNumber", "buyerName", "buyerTelephone")}
    decls = [first] + [goods_declaration(builder, parties, [(HANDBAG, 1, "4500.00")], **buyer) for _ in range(6)]
    decl_time = first["inventory"].head["declTime"]  # one calendar year for all of them
    for d in decls:
        d["inventory"] = changed(d["inventory"], declTime=decl_time)
        # each: 4,500 + tax 4,500 × 9.1 % = 409.50 -> acturalPaid 4,909.50, under 5,000
        assert d["order"].head["acturalPaid"] == "4909.50"
        assert d["payment"].head["payerIdNumber"] == buyer["buyerIdNumber"] and d["inventory"].head["buyerName"] == buyer["buyerName"]
    assert len({d["order"].head["orderNo"] for d in decls}) == 7

    # five orders: 5 × 4,909.50 = 24,547.50 <= 26,000 -- all released
    in_parallel(lambda d: file_docs(swx, filer, builder, d), *[(d,) for d in decls[:5]])
    for d in decls[:5]:
        wait_state(swx, d["order"], "released")
    # the sixth would make 24,547.50 + 4,909.50 = 29,457.00 > 26,000
    file_docs(swx, filer, builder, decls[5])
    v = wait_state(swx, decls[5]["order"], "rejected")
    (reason,) = v["reasons"]
    assert reason.startswith(f"customs refused the inventory: -621018 buyer {buyer['buyerIdNumber'][:4]}"), reason
    assert (f"has bought 24547.50 in {decl_time[:4]}; with this order's acturalPaid 4909.50 that is 29457.00, "
            "over the annual limit 26000.00") in reason
    assert buyer["buyerIdNumber"] not in reason

    # the whole of the first list comes back (625): its lines' value, 1 × 4,500.00, is given back
    # (not its acturalPaid: the tax is not refunded), leaving 24,547.50 - 4,500 = 20,047.50
    inv = decls[0]["inventory"]
    refund = builder.refund(inv, parties, invt_no_of(swx, decls[0]["order"]))
    file_docs(swx, filer, builder, {"refund": refund}, ["refund"])
    v = wait_for(swx, decls[0]["order"], lambda v: verdict(v, "refund", "customs"), "the return's verdict")
    back = verdict(v, "refund", "customs")
    assert back["status"] == "399" and "CNY 4500.00 given back" in back["info"], back
    assert v["state"] == "released"  # a return leaves the declaration released

    # the seventh, which would have crossed before the return, now fits: 20,047.50 + 4,909.50 = 24,957.00
    file_docs(swx, filer, builder, decls[6])
    assert wait_state(swx, decls[6]["order"], "released")["reasons"] == []


# ---------------------------------------------------------------------- 5. cancellation
def test_cancelling_a_released_list(swx, builder, filer, parties):
    decl = goods_declaration(builder, parties, [(CARDIGAN, 1, "699.00")], freight="12")
    file_docs(swx, filer, builder, decl)
    wait_state(swx, decl["order"], "released")
    invt_no = invt_no_of(swx, decl["order"])
    cancel = builder.cancel(decl["inventory"], parties, invt_no)
    file_docs(swx, filer, builder, {"cancel": cancel}, ["cancel"])
    v = wait_state(swx, decl["order"], "cancelled")
    assert verdict(v, "cancel", "customs")["status"] == "399"
    (reason,) = v["reasons"]
    assert f"list {invt_no} cancelled" in reason and f"CNY {decl['order'].head['acturalPaid']} given back" in reason


# ---------------------------------------------------------------------- 8. documents in any order
def test_documents_in_any_order_are_matched(swx, builder, filer, parties):
    orders = [("inventory", "waybill", "payment", "order"), ("payment", "inventory", "order", "waybill"),
              ("waybill", "order", "inventory", "payment")]
    decls = [goods_declaration(builder, parties, [(CARDIGAN, 1, "459.00"), (CLEANSER, 3, "69.00")], freight="6")
             for _ in orders]
    first = decls[0]
    file_docs(swx, filer, builder, first, ["inventory"])
    v = view(swx, first["order"])
    assert v["state"] == "waiting" and v["reasons"] == ["waiting for the order, payment, waybill"]
    file_docs(swx, filer, builder, first, orders[0][1:])
    for decl, kinds in zip(decls[1:], orders[1:]):
        file_docs(swx, filer, builder, decl, kinds)
    for decl in decls:
        v = wait_state(swx, decl["order"], "released")
        assert set(v["documents"]) == set(CORE)
