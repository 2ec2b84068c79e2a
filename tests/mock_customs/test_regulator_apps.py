"""The inspection, tax and FX stand-ins: their decisions as pure functions, then each one as an app
talking over HTTP to a fake window that records the receipts it is sent."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from decimal import Decimal as D

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from lxml import etree

from mock_customs.config import MockSettings
from mock_customs.fx import FLAGGED, Fx, FxLedger
from mock_customs.inspection import (
    Inspection,
    inspection_receipt,
    load_table,
    parse_table,
    screen,
)
from mock_customs.tax import (
    Tax,
    assess,
    load_rates,
    parse_rates,
    shortfall_note,
    tax_bill_xml,
)
from schemas.builder import CONSUMPTION_TAX, MessageBuilder, retail_tax, wrap_dxp
from schemas.catalog import CEB_NS
from schemas.loader import ceb_schema
from tests.fixtures.server import serving

C = f"{{{CEB_NS}}}"
LIMIT = D(5000)


@pytest.fixture(scope="module")
def rates():
    return load_rates()


def _line(gnum: int, gcode: str, total: str, *, qty: str = "1", qty1: str = "1", unit1: str = "007",
          gname: str = "商品") -> dict[str, str]:
    return {"gnum": str(gnum), "gcode": gcode, "gname": gname, "qty": qty, "qty1": qty1, "unit1": unit1,
            "price": total, "totalPrice": total}


def _head(freight: str = "0", insured: str = "0", **extra: str) -> dict[str, str]:
    return {"freight": freight, "insuredFee": insured, **extra}


def _valid(xml: bytes | str) -> etree._Element:
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    schema = ceb_schema()
    assert schema.validate(root), schema.error_log
    return root


# --- tax: the assessment ---------------------------------------------------------------------


def test_plain_goods_are_taxed_at_9_1_percent_of_goods_and_freight(rates):
    a = assess(_head("10"), [_line(1, "3401300000", "200.00")], rates, LIMIT)
    assert a.within_limit and a.base == D("210.00")
    assert (a.customs_tax, a.value_added_tax, a.consumption_tax) == (D("0.00"), D("19.11"), D("0.00"))
    assert a.lines[0].tax_price == D("210.00")


def test_high_end_cosmetics_carry_consumption_tax_and_cheap_ones_do_not(rates):
    # 30 ml for CNY 600: CNY 20 per ml, over the CNY 10 high-end threshold → 15 % consumption tax.
    serum = _line(1, "3304990099", "600.00", qty1="0.03", unit1="035")
    a = assess(_head(), [serum], rates, LIMIT)
    # total 600 × (0.15 + 0.13) / 0.85 × 0.7 = 138.3529…; consumption 600 × 0.15 / 0.85 × 0.7 = 74.1176…
    assert a.total == D("138.35")
    assert a.consumption_tax == D("74.12") and a.value_added_tax == D("64.23") and a.customs_tax == 0
    assert a.lines[0].consumption_rate == D("0.15")
    cream = _line(1, "3304990099", "200.00", qty1="0.065", unit1="035")  # about CNY 3 per ml
    b = assess(_head(), [cream], rates, LIMIT)
    assert (b.total, b.consumption_tax) == (D("18.20"), D("0.00"))


def test_over_the_per_transaction_limit_full_tax_applies(rates):
    bag = _line(1, "4202210090", "5200.00")
    a = assess(_head("20"), [bag], rates, LIMIT)
    # tariff 5220 × 6 % = 313.20; VAT (5220 + 313.20) × 13 % = 719.316
    assert not a.within_limit
    assert (a.customs_tax, a.value_added_tax, a.consumption_tax) == (D("313.20"), D("719.32"), D("0.00"))
    watch = _line(1, "9102110000", "12000.00")
    w = assess(_head(), [watch], rates, LIMIT)
    # tariff 960; consumption (12000 + 960) / 0.8 × 0.2 = 3240; VAT 16200 × 0.13 = 2106
    assert (w.customs_tax, w.consumption_tax, w.value_added_tax) == (D("960.00"), D("3240.00"), D("2106.00"))


def test_the_order_value_decides_the_limit_when_known(rates):
    line = _line(1, "3401300000", "4900.00")
    assert assess(_head(), [line], rates, LIMIT).within_limit
    full = assess(_head(), [line], rates, LIMIT, order_value=D("5300.00"))
    assert not full.within_limit and full.customs_tax == D("318.50")  # 4900 × 6.5 %


def test_freight_and_insured_fee_are_shared_in_proportion_to_line_value(rates):
    lines = [_line(1, "3401300000", "300.00"),
             _line(2, "2204210000", "100.00", qty1="0.75", unit1="095")]  # wine: 10 % consumption tax
    a = assess(_head("30", "10"), lines, rates, LIMIT)
    assert [lt.tax_price for lt in a.lines] == [D("330.00"), D("110.00")]
    # 330 × 9.1 % = 30.03; 110 × (0.1 + 0.13) / 0.9 × 0.7 = 19.6778; consumption 110 × 0.1 / 0.9 × 0.7 = 8.5556
    assert (a.total, a.consumption_tax, a.value_added_tax) == (D("49.71"), D("8.56"), D("41.15"))
    assert [lt.value_added_tax for lt in a.lines] == [D("30.03"), D("11.12")]
    assert [lt.consumption_tax for lt in a.lines] == [D("0.00"), D("8.56")]
    assert a.total == retail_tax([(D(300), "3401300000"), (D(100), "2204210000")], D(30), D(10))


def test_books_take_the_reduced_vat_rate(rates):
    a = assess(_head(), [_line(1, "4901990000", "100.00")], rates, LIMIT)
    assert a.total == D("6.30")  # 100 × 9 % × 70 %


def test_rates_agree_with_the_builder_catalogue(rates):
    for gcode, rate in CONSUMPTION_TAX.items():
        assert rates.consumption_rate(_line(1, gcode, "300", qty1="0.75", unit1="095")) == rate
    assert parse_rates({}).vat_rate("3401300000") == D("0.13")


def test_assessment_agrees_with_the_builder_for_in_limit_lists(rates):
    b = MessageBuilder(seed=606)
    parties = b.parties()
    for i in range(120):
        d = b.declaration(parties, lines=i % 6 + 1)
        inv, order = d["inventory"], d["order"]
        a = assess(inv.head, inv.lines, rates, LIMIT, order_value=D(order.head["acturalPaid"]))
        assert a.within_limit
        expected = retail_tax([(D(x["totalPrice"]), x["gcode"]) for x in inv.lines],
                              D(inv.head["freight"]), D(inv.head["insuredFee"]))
        assert a.total == expected == D(order.head["taxTotal"])
        # the lines add up to the head
        assert sum(lt.value_added_tax + lt.consumption_tax for lt in a.lines) == a.total
        assert sum(lt.tax_price for lt in a.lines) == a.base


def test_tax_bill_validates_and_keeps_schema_order(rates):
    b = MessageBuilder(seed=7)
    inv = b.declaration(b.parties(), lines=3)["inventory"]
    a = assess(inv.head, inv.lines, rates, LIMIT)
    head = dict(inv.head, invtNo=b.invt_no(inv))
    note = shortfall_note(D("0.01"), a)
    assert note == f"taxTotal short: declared 0.01, assessed {a.total:.2f}"
    root = _valid(tax_bill_xml(head, inv.lines, a, note=note))
    rd = root.find(f"{C}Tax/{C}TaxHeadRd")
    assert [etree.QName(e).localname for e in rd] == [
        "guid", "returnTime", "invtNo", "taxNo", "customsTax", "valueAddedTax", "consumptionTax", "status",
        "note", "assureCode", "ebcCode", "logisticsCode", "agentCode", "customsCode"]
    assert rd.findtext(f"{C}invtNo") == head["invtNo"] and rd.findtext(f"{C}taxNo") == head["invtNo"] + "01"
    assert rd.findtext(f"{C}status") == "1" and rd.findtext(f"{C}note") == note
    items = root.findall(f"{C}Tax/{C}TaxListRd")
    assert [x.findtext(f"{C}gnum") for x in items] == ["1", "2", "3"]
    assert [etree.QName(e).localname for e in items[0]] == [
        "gnum", "gcode", "taxPrice", "customsTax", "valueAddedTax", "consumptionTax"]
    assert shortfall_note(a.total, a) is None
    with pytest.raises(ValueError):
        tax_bill_xml(inv.head, inv.lines, a)  # no invtNo yet


# --- inspection: the screening -----------------------------------------------------------------


@pytest.fixture(scope="module")
def table():
    return load_table()


def test_screening_clears_goods_off_the_table(table):
    s = screen([_line(1, "4202210090", "1280", gname="卡维拉头层牛皮手提包")], table)
    assert s.decision == "clear" and s.verdict() == ("399", "inspection: cleared")


def test_screening_holds_restricted_goods(table):
    s = screen([_line(1, "4202210090", "1280"), _line(2, "1901101000", "298", gname="牧语婴幼儿配方奶粉1段")], table)
    status, info = s.verdict()
    assert status == "500"
    assert info.startswith("inspection: held for inspection: line 2 gcode 1901101000 (牧语婴幼儿配方奶粉1段): infant formula")


def test_screening_refuses_prohibited_goods_by_prefix_and_by_keyword(table):
    by_prefix = screen([_line(1, "0106190090", "500", gname="宠物仓鼠")], table)
    status, info = by_prefix.verdict()
    assert status == "100" and info.startswith("-621501 inspection: prohibited goods: line 1 gcode 0106190090 (宠物仓鼠)")
    assert "live animals" in info
    # a keyword in the goods name wins over a restricted prefix (toys)
    by_keyword = screen([_line(1, "3304990099", "99"), _line(2, "9503008900", "199", gname="金属仿真枪模型")], table)
    assert by_keyword.decision == "prohibited"
    status, info = by_keyword.verdict()
    assert status == "100" and "line 2 gcode 9503008900 (金属仿真枪模型): weapons" in info
    assert "line 1" not in info  # the refusal names the prohibited line only


def test_table_prefixes_ignore_dots_and_need_something_to_match():
    entries = parse_table({"restricted": [{"prefixes": ["1901.10"], "reason": "formula"}]})
    assert screen([_line(1, "1901101000", "1")], entries).decision == "restricted"
    assert screen([_line(1, "1901900000", "1")], entries).decision == "clear"
    with pytest.raises(ValueError):
        parse_table({"prohibited": [{"reason": "nothing"}]})


def test_inspection_receipt_validates_and_echoes_the_list(table):
    b = MessageBuilder(seed=11)
    inv = b.declaration(b.parties())["inventory"]
    root = _valid(inspection_receipt([(inv.head, "399", "inspection: cleared")]))
    node = root.find(f"{C}InventoryReturn")
    assert node.findtext(f"{C}guid") == inv.head["guid"]
    assert node.findtext(f"{C}preNo") == "0" * 18
    assert node.findtext(f"{C}copNo") == (inv.head.get("copNo") or inv.head["orderNo"])[:20]


# --- fx: the ledger ---------------------------------------------------------------------------


def _pay(tx: str, cny: str, *, payer: str = "11010519491231002X", when: str = "20240315101500",
         app_type: str = "1") -> dict[str, str]:
    return {"guid": "G" * 36, "appType": app_type, "payCode": "3301960001", "payTransactionId": tx,
            "payerIdNumber": payer, "amountPaid": cny, "payTime": when}


def test_fx_accumulates_a_payers_year_against_the_quota():
    ledger = FxLedger(D("7.10"), D(50000))
    first = ledger.record(_pay("T1", "200000.00"))
    assert first.status == "120" and first.year_total_usd == D("28169.01")
    assert first.info == "fx: recorded (payer year total USD 28,169.01)"
    assert ledger.record(_pay("T2", "150000.00")).year_total_usd == D("49295.77")
    over = ledger.record(_pay("T3", "10000.00"))
    assert over.status == FLAGGED and over.year_total_usd == D("50704.22")
    assert over.info == "fx: payer annual quota exceeded: 50,704.22 USD of 50,000"
    # another payer and another year each start from nothing
    assert ledger.record(_pay("T4", "710.00", payer="110105194912310021")).year_total_usd == D("100.00")
    next_year = ledger.record(_pay("T5", "7100.00", when="20250102090000"))
    assert next_year.status == "120" and next_year.year_total_usd == D("1000.00")


def test_fx_change_replaces_and_delete_removes_a_payment():
    ledger = FxLedger(D("7.10"), D(50000))
    ledger.record(_pay("T1", "200000.00"))
    ledger.record(_pay("T2", "150000.00"))
    assert ledger.record(_pay("T3", "10000.00")).status == FLAGGED
    changed = ledger.record(_pay("T3", "1000.00", app_type="2"))
    assert changed.status == "120" and changed.year_total_usd == D("49436.62")
    assert ledger.record(_pay("T1", "200000.00")).year_total_usd == D("49436.62")  # a repeat does not count twice
    gone = ledger.record(_pay("T2", "", app_type="3"))
    assert gone.status == "120" and gone.year_total_usd == D("28309.86")
    assert ledger.record(_pay("T9", "", app_type="3")).info.startswith("fx: no such payment")


# --- the stand-ins over HTTP, against a fake window -------------------------------------------

DELIVERY_TOKEN = "delivery-token-for-tests"
OPERATOR = "operator-token-for-tests"
KEYS = {"inspection": "key-inspection", "tax": "key-tax", "fx": "key-fx"}


class FakeWindow:
    """The window as a regulator sees it: takes receipts, shows declarations."""

    def __init__(self) -> None:
        self.receipts: list[tuple[str, bytes]] = []  # (regulator key, body)
        self.views: dict[tuple[str, str], dict] = {}
        self.gets = 0
        self.lock = threading.Lock()
        app = FastAPI()

        @app.post("/v1/regulators/receipts")
        async def receipts(request: Request) -> Response:
            key = (request.headers.get("authorization") or "").removeprefix("Bearer ")
            if key not in KEYS.values():
                return Response(status_code=401)
            body = await request.body()
            with self.lock:
                self.receipts.append((key, body))
            return Response(status_code=201)

        @app.get("/v1/declarations/{ebp}/{order_no}")
        async def declaration(ebp: str, order_no: str, request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {KEYS['tax']}":
                return Response(status_code=401)
            with self.lock:
                self.gets += 1
                view = self.views.get((ebp, order_no))
            if view is None:
                return Response(status_code=404)
            return Response(json.dumps(view), media_type="application/json")

        self.app = app

    def taken(self, key: str) -> list[etree._Element]:
        with self.lock:
            return [etree.fromstring(body) for k, body in self.receipts if k == KEYS[key]]


@pytest.fixture(scope="module")
def window():
    fake = FakeWindow()
    with serving(fake.app, lifespan="off") as fake.url:
        yield fake


def _settings(window: FakeWindow, **extra) -> MockSettings:
    return MockSettings(gateway_url=window.url, keys=KEYS, delivery_token=DELIVERY_TOKEN, operator_token=OPERATOR,
                        receipt_backoff=0.05, **extra)


class Stand:
    """One stand-in app, reached in-process; its context talks to the fake window over real HTTP."""

    def __init__(self, cls, settings: MockSettings) -> None:
        from mock_customs.app import create_regulator_app

        self.app = create_regulator_app(cls, settings)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://regulator")

    async def deliver(self, message: bytes, filer: str, *, token: str = DELIVERY_TOKEN) -> httpx.Response:
        root = etree.fromstring(message)
        body = wrap_dxp(message, sender_id="DXPSWX0000000001", receiver_id="DXPREGULATOR0001")
        return await self.http.post("/messages", content=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/xml",
            "X-Swx-Delivery": f"D-{root.get('guid')}", "X-Swx-Message-Guid": root.get("guid"), "X-Swx-Filer": filer})

    async def state(self) -> dict:
        r = await self.http.get("/_admin/state", headers={"Authorization": f"Bearer {OPERATOR}"})
        assert r.status_code == 200, r.text
        return r.json()

    async def close(self) -> None:
        await self.http.aclose()
        await self.app.state.runtime.ctx.stop()


async def _until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


def _returns(roots: list[etree._Element], node: str) -> dict[str, list[tuple[str, str]]]:
    """guid → [(returnStatus, returnInfo)] over every receipt, in order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for root in roots:
        for r in root.findall(C + node):
            out.setdefault(r.findtext(C + "guid"), []).append((r.findtext(C + "returnStatus"), r.findtext(C + "returnInfo")))
    return out


async def test_inspection_app_clears_holds_and_refuses(window):
    b = MessageBuilder(seed=31)
    parties = b.parties()
    goods = [("4202210090", "卡维拉头层牛皮手提包"), ("3304990099", "澜屿玻尿酸保湿修护面霜"), ("0106190090", "宠物仓鼠")]
    lists = []
    for gcode, gname in goods:
        inv = b.declaration(parties)["inventory"]
        inv.lines[0].update(gcode=gcode, gname=gname)
        lists.append(inv)
    stand = Stand(Inspection, _settings(window, inspection_delay=0.1))
    try:
        before = len(window.taken("inspection"))
        message = b.message("621", lists, sender=parties.agent)
        assert (await stand.deliver(message, parties.agent.code, token="wrong")).status_code == 401
        r = await stand.deliver(message, parties.agent.code)
        assert r.status_code == 200 and r.json()["received"] == 3
        await _until(lambda: len(window.taken("inspection")) >= before + 2)
        roots = window.taken("inspection")[before:]
        for root in roots:
            _valid(etree.tostring(root))
        got = _returns(roots, "InventoryReturn")
        clear, held, refused = (got[inv.head["guid"]] for inv in lists)
        assert clear == [("399", "inspection: cleared")]
        assert held[0][0] == "500" and held[0][1].startswith("inspection: held for inspection: line 1 gcode 3304990099")
        assert held[1] == ("399", "inspection: passed after inspection")
        assert refused[0][0] == "100" and refused[0][1].startswith("-621501 inspection: prohibited goods: line 1")
        # a redelivery changes nothing
        assert (await stand.deliver(message, parties.agent.code)).json()["received"] == 0
        state = await stand.state()
        assert state["counts"] == {"clear": 1, "restricted": 1, "prohibited": 1, "released": 1}
    finally:
        await stand.close()


async def test_tax_app_bills_a_numbered_list_and_flags_a_short_tax(window, rates):
    b = MessageBuilder(seed=32)
    parties = b.parties()
    d = b.declaration(parties, lines=2)
    inv, order = d["inventory"], d["order"]
    invt_no = b.invt_no(inv)
    key = (inv.head["ebpCode"], inv.head["orderNo"])
    window.views[key] = {"state": "declared", "documents": {"inventory": {"invtNo": None},
                                                            "order": {"taxTotal": "0.50", "acturalPaid": order.head["acturalPaid"]}}}
    stand = Stand(Tax, _settings(window, tax_wait=5.0))
    try:
        before, gets = len(window.taken("tax")), window.gets
        assert (await stand.deliver(b.message("621", inv, sender=parties.agent), parties.agent.code)).status_code == 200
        await _until(lambda: window.gets >= gets + 2)  # it polls while customs has not numbered the list
        assert len(window.taken("tax")) == before
        window.views[key]["documents"]["inventory"]["invtNo"] = invt_no
        await _until(lambda: len(window.taken("tax")) > before)
        bill = window.taken("tax")[before]
        _valid(etree.tostring(bill))
        rd = bill.find(f"{C}Tax/{C}TaxHeadRd")
        expected = assess(inv.head, inv.lines, rates, LIMIT)
        assert rd.findtext(C + "invtNo") == invt_no and rd.findtext(C + "taxNo") == invt_no + "01"
        assert D(rd.findtext(C + "valueAddedTax")) + D(rd.findtext(C + "consumptionTax")) == expected.total
        assert D(order.head["taxTotal"]) == expected.total
        assert rd.findtext(C + "note") == f"taxTotal short: declared 0.50, assessed {expected.total:.2f}"
        assert rd.findtext(C + "assureCode") == inv.head["assureCode"]
        assert len(bill.findall(f"{C}Tax/{C}TaxListRd")) == 2
        state = await stand.state()
        assert state["short"] == [invt_no] and state["pending"] == 0
    finally:
        await stand.close()


async def test_tax_app_never_bills_a_refused_or_unnumbered_list(window):
    b = MessageBuilder(seed=33)
    parties = b.parties()
    refused = b.declaration(parties)["inventory"]
    unnumbered = b.declaration(parties)["inventory"]
    window.views[(refused.head["ebpCode"], refused.head["orderNo"])] = {
        "state": "rejected", "documents": {"inventory": {"invtNo": None}}}
    window.views[(unnumbered.head["ebpCode"], unnumbered.head["orderNo"])] = {
        "state": "declared", "documents": {"inventory": {}}}
    stand = Stand(Tax, _settings(window, tax_wait=0.4))
    try:
        before = len(window.taken("tax"))
        r = await stand.deliver(b.message("621", [refused, unnumbered], sender=parties.agent), parties.agent.code)
        assert r.json()["received"] == 2

        async def settled() -> dict:
            while (s := await stand.state())["pending"]:
                await asyncio.sleep(0.05)
            return s

        state = await asyncio.wait_for(settled(), 5)
        reasons = {a["guid"]: a["reason"] for a in state["abandoned"]}
        assert reasons[refused.head["guid"]] == "refused by customs"
        assert reasons[unnumbered.head["guid"]].startswith("no invtNo within")
        assert len(window.taken("tax")) == before and state["billCount"] == 0
    finally:
        await stand.close()


async def test_fx_app_acknowledges_then_flags_over_the_quota(window):
    b = MessageBuilder(seed=34)
    parties = b.parties()
    order = b.declaration(parties)["order"]
    first = b.payment(order, parties, amountPaid="300000.00")
    second = b.payment(order, parties, amountPaid="80000.00", payTransactionId=first.head["payTransactionId"] + "9")
    stand = Stand(Fx, _settings(window))
    try:
        before = len(window.taken("fx"))
        r = await stand.deliver(b.message("411", [first, second], sender=parties.pay), parties.pay.code)
        assert r.status_code == 200
        await _until(lambda: len(window.taken("fx")) > before)
        receipt = window.taken("fx")[before]
        _valid(etree.tostring(receipt))
        got = _returns([receipt], "PaymentReturn")
        assert got[first.head["guid"]] == [("120", "fx: recorded (payer year total USD 42,253.52)")]
        assert got[second.head["guid"]] == [("300", "fx: payer annual quota exceeded: 53,521.13 USD of 50,000")]
        ret = receipt.find(C + "PaymentReturn")
        assert ret.findtext(C + "payTransactionId") == first.head["payTransactionId"]
        state = await stand.state()
        assert state["flagged"] == 1 and state["payments"] == 2
        assert order.head["buyerIdNumber"] not in str(state)  # ID numbers are masked
    finally:
        await stand.close()

