"""The inspection, tax and FX stand-ins, each one as an app talking over HTTP to a fake window that
records the receipts it is sent."""

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
from mock_customs.fx import Fx
from mock_customs.inspection import Inspection
from mock_customs.tax import Tax, assess
from schemas.builder import MessageBuilder, wrap_dxp
from tests.fixtures.regulators import LIMIT, C, _valid
from tests.fixtures.server import serving

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
