"""The customs stand-in and the stand-in framework, against a fake window over real HTTP.

The fake window is a small FastAPI app on uvicorn in a thread: it records the receipts customs posts
(every one must be valid under ``ceb_schema()``) and answers registry reads. Customs itself runs
in-process (httpx ASGITransport); the real gateway is never started.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from lxml import etree

from mock_customs.app import create_regulator_app
from mock_customs.config import MockSettings
from mock_customs.customs import Customs
from schemas.builder import Doc, MessageBuilder, Parties
from schemas.catalog import CEB_NS
from schemas.loader import ceb_schema
from tests.fixtures.server import serving

KEY = "swx_reg_customs_test_key"
DELIVERY = "delivery-token-for-tests"
OPERATOR = "operator-token-for-tests"
C = f"{{{CEB_NS}}}"


# ---------------------------------------------------------------------- the fake window
class FakeWindow:
    """Records receipts (in arrival order) and serves registry views; can be told to fail."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.receipts: list[bytes] = []
        self.enterprises: dict[str, dict[str, Any]] = {}
        self.registry_reads: list[str] = []
        self.fail_next = 0  # answer 500 to this many receipt posts
        self.refuse_next = 0  # answer 409 to this many
        self.url = ""
        app = FastAPI()

        @app.post("/v1/regulators/receipts")
        async def receipts(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return Response(status_code=401)
            body = await request.body()
            with self.lock:
                if self.fail_next:
                    self.fail_next -= 1
                    return Response(status_code=500)
                if self.refuse_next:
                    self.refuse_next -= 1
                    return Response(status_code=409)
                self.receipts.append(body)
            return Response(status_code=201)

        @app.get("/v1/registry/enterprises/{code}")
        async def registry(code: str, request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return Response(status_code=401)
            with self.lock:
                self.registry_reads.append(code)
                view = self.enterprises.get(code)
            if view is None:
                return Response(status_code=404)
            return Response(json.dumps(view), media_type="application/json")

        self.app = app

    def reset(self) -> None:
        with self.lock:
            self.receipts.clear()
            self.enterprises.clear()
            self.registry_reads.clear()
            self.fail_next = self.refuse_next = 0

    def returns(self) -> list[dict[str, str]]:
        """Every return node received so far, in order, each with its receipt's root name; validated."""
        with self.lock:
            bodies = list(self.receipts)
        out = []
        for body in bodies:
            root = etree.fromstring(body)
            assert ceb_schema().validate(root), f"{body.decode()}\n{ceb_schema().error_log}"
            for node in root:
                fields = {etree.QName(child).localname: child.text or "" for child in node}
                out.append({"receipt": etree.QName(root).localname, **fields})
        return out

    def for_guid(self, guid: str) -> list[dict[str, str]]:
        return [r for r in self.returns() if r["guid"] == guid]



@pytest.fixture(scope="module")
def window() -> Any:
    fake = FakeWindow()
    with serving(fake.app, lifespan="off") as fake.url:
        yield fake


# ---------------------------------------------------------------------- customs under test
@dataclasses.dataclass
class Harness:
    app: FastAPI
    http: httpx.AsyncClient
    window: FakeWindow
    builder: MessageBuilder

    @property
    def customs(self) -> Customs:
        return self.app.state.runtime.regulator

    def body(self, code: str, docs: Doc | list[Doc], parties: Parties, *, dxp: bool = True, guid: str | None = None) -> bytes:
        sender = parties.sender_for(code)
        message = self.builder.message(code, docs, sender=sender, guid=guid)
        return self.builder.wrap_dxp(message, sender_id=sender.dxp_id) if dxp else message

    async def post(self, body: bytes, *, token: str | None = DELIVERY, delivery: str = "d-1") -> httpx.Response:
        headers = {"Content-Type": "application/xml", "X-Swx-Delivery": delivery, "X-Swx-Filer": "F1"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return await self.http.post("/messages", content=body, headers=headers)

    async def send(self, code: str, docs: Doc | list[Doc], parties: Parties, **kw: Any) -> httpx.Response:
        r = await self.post(self.body(code, docs, parties, **kw))
        assert r.status_code == 200, r.text
        return r

    async def declare(self, decl: dict[str, Doc], parties: Parties,
                      order: tuple[str, ...] = ("order", "payment", "waybill", "inventory")) -> None:
        codes = {"order": "311", "payment": "411", "waybill": "511", "inventory": "621"}
        for kind in order:
            await self.send(codes[kind], decl[kind], parties)

    async def wait_for(self, guid: str, status: str, timeout: float = 5.0) -> list[dict[str, str]]:
        """The returns for ``guid`` once one has ``status``."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.window.for_guid(guid)
            if any(r["returnStatus"] == status for r in got):
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"no {status} for {guid}; got {[(r['returnStatus'], r['returnInfo']) for r in got]}")
            await asyncio.sleep(0.01)

    async def admin(self, method: str, path: str, token: str | None = OPERATOR, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.request(method, path, headers=headers, **kw)


_seeds = itertools.count(7000)


@asynccontextmanager
async def running(window: FakeWindow, **overrides: Any) -> AsyncIterator[Harness]:
    window.reset()
    settings = MockSettings(**{
        "gateway_url": window.url, "keys": {"customs": KEY}, "delivery_token": DELIVERY, "operator_token": OPERATOR,
        "match_wait": 2.0, "step_delay": 0.02, "receipt_backoff": 0.01, "receipt_backoff_max": 0.05, **overrides,
    })
    app = create_regulator_app(Customs, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://customs", timeout=30) as http:
            yield Harness(app, http, window, MessageBuilder(seed=next(_seeds)))
    # A post the stopped senders had already written may still reach the window (a server in another
    # thread): let it land now rather than in the next test's window.
    seen, quiet_since = -1, time.monotonic()
    give_up = quiet_since + 2
    while time.monotonic() - quiet_since < 0.1 and time.monotonic() < give_up:
        with window.lock:
            now = len(window.receipts)
        if now != seen:
            seen, quiet_since = now, time.monotonic()
        await asyncio.sleep(0.02)


@pytest.fixture
async def h(window: FakeWindow) -> AsyncIterator[Harness]:
    async with running(window) as harness:
        yield harness


def statuses(returns: list[dict[str, str]]) -> list[str]:
    return [r["returnStatus"] for r in returns]


def edit(doc: Doc, **fields: str) -> Doc:
    return dataclasses.replace(doc, head={**doc.head, **fields})


def edit_line(doc: Doc, i: int, **fields: str) -> Doc:
    lines = [dict(line) for line in doc.lines]
    lines[i].update(fields)
    return dataclasses.replace(doc, lines=lines)


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


# ---------------------------------------------------------------------- at-least-once delivery
async def test_duplicate_delivery_is_processed_once(h: Harness) -> None:
    parties = h.builder.parties()
    order = h.builder.order(parties)
    body = h.body("311", order, parties)
    first, again = await h.post(body), await h.post(body, delivery="d-1")
    assert first.json() == {"received": 1, "duplicates": 0}
    assert again.status_code == 200 and again.json() == {"received": 0, "duplicates": 1}
    # The same document inside another message (another guid) is dropped too; its new neighbour is not.
    other = h.builder.order(parties)
    mixed = await h.post(h.body("311", [order, other], parties))
    assert mixed.json() == {"received": 1, "duplicates": 1}
    await h.wait_for(other.head["guid"], "120")
    await h.app.state.runtime.ctx.idle()
    assert statuses(h.window.for_guid(order.head["guid"])) == ["120"]
    state = (await h.admin("GET", "/_admin/state")).json()
    assert state["received"]["messages"] == 2 and state["received"]["duplicates"] == 2


async def test_receipts_survive_a_flaky_window_in_order(h: Harness) -> None:
    h.window.fail_next = 3
    parties = h.builder.parties()
    orders = [h.builder.order(parties) for _ in range(3)]
    for o in orders:
        await h.send("311", o, parties)
    await h.wait_for(orders[-1].head["guid"], "120")
    assert [r["guid"] for r in h.window.returns()] == [o.head["guid"] for o in orders]
    assert h.app.state.runtime.ctx.receipts["retries"] >= 3

    h.window.refuse_next = 1  # a 409 is logged and dropped, and the sender moves on
    late = [h.builder.order(parties) for _ in range(2)]
    for o in late:
        await h.send("311", o, parties)
    await h.wait_for(late[1].head["guid"], "120")
    assert h.window.for_guid(late[0].head["guid"]) == []
    assert h.app.state.runtime.ctx.receipts["dropped"] == 1


# ---------------------------------------------------------------------- faults
async def test_faults_outage_errors_and_latency(h: Harness) -> None:
    parties = h.builder.parties()
    order = h.builder.order(parties)
    body = h.body("311", order, parties)
    assert (await h.admin("PUT", "/_admin/faults", json={"outage": True})).json()["outage"] is True
    assert (await h.post(body)).status_code == 503
    reg = await h.http.post("/registrations", json={"code": "X"}, headers={"Authorization": f"Bearer {DELIVERY}"})
    assert reg.status_code == 503
    assert (await h.admin("GET", "/_admin/state")).status_code == 200  # admin is never faulted

    r = await h.admin("PUT", "/_admin/faults", json={"outage": False, "errorRate": 1})
    assert r.json() == {"outage": False, "errorRate": 1.0, "latencyMs": 0}
    assert (await h.post(body)).status_code == 500

    await h.admin("PUT", "/_admin/faults", json={"errorRate": 0, "latencyMs": 150})
    started = time.monotonic()
    ok = await h.post(body)
    assert time.monotonic() - started >= 0.15
    assert ok.json() == {"received": 1, "duplicates": 0}  # the failed attempts recorded nothing
    assert (await h.admin("GET", "/_admin/faults")).json()["latencyMs"] == 150

    for bad in ({"errorRate": 1.5}, {"latencyMs": -1}, {"outage": "sometimes"}, {"surprise": 1}):
        assert (await h.admin("PUT", "/_admin/faults", json=bad)).status_code == 422


# ---------------------------------------------------------------------- auth and hostile bodies
async def test_delivery_and_admin_auth(h: Harness) -> None:
    parties = h.builder.parties()
    body = h.body("311", h.builder.order(parties), parties)
    assert (await h.post(body, token=None)).status_code == 401
    assert (await h.post(body, token="wrong")).status_code == 401
    r = await h.http.post("/registrations", json={"code": "X"}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    for method, path in (("GET", "/_admin/state"), ("GET", "/_admin/faults"), ("PUT", "/_admin/faults")):
        assert (await h.admin(method, path, token=None, json={})).status_code == 401
        assert (await h.admin(method, path, token=DELIVERY, json={})).status_code == 401
    assert h.window.receipts == []


async def test_admin_is_closed_without_an_operator_token(window: FakeWindow) -> None:
    async with running(window, operator_token=None, delivery_token=None) as h:
        assert (await h.admin("GET", "/_admin/state", token="anything")).status_code == 403
        parties = h.builder.parties()
        assert (await h.post(h.body("311", h.builder.order(parties), parties), token=None)).status_code == 200


@pytest.mark.parametrize("body, words", [
    (b"", "empty"),
    (b"<not-xml", "not well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "document type"),
    (b'<DxpMsg xmlns="http://www.chinaport.gov.cn/dxp"><Data>***</Data></DxpMsg>', "Base64"),
    (b'<DxpMsg xmlns="http://www.chinaport.gov.cn/dxp"><Data>' + base64.b64encode(b"<a/>") + b"</Data></DxpMsg>",
     "not a filed CEB message"),
    (b'<CEB816Message xmlns="http://www.chinaport.gov.cn/ceb" guid="X"/>', "not a filed CEB message"),
    (b'<CEB311Message xmlns="http://www.chinaport.gov.cn/ceb" guid="X"/>', "holds no Order"),
    (b"<a>" * 40 + b"</a>" * 40, "nested deeper"),
])
async def test_unreadable_bodies_are_400(h: Harness, body: bytes, words: str) -> None:
    r = await h.post(body)
    assert r.status_code == 400 and words in r.json()["detail"], r.text


async def test_oversized_body_is_413(window: FakeWindow) -> None:
    async with running(window, max_body_bytes=2048) as h:
        parties = h.builder.parties()
        r = await h.post(h.body("311", [h.builder.order(parties) for _ in range(5)], parties))
        assert r.status_code == 413


async def test_all_four_mounted_when_present(window: FakeWindow) -> None:
    for name in ("inspection", "tax", "fx"):
        pytest.importorskip(f"mock_customs.{name}")
    from mock_customs.app import create_app

    app = create_app(MockSettings(gateway_url=window.url, operator_token=OPERATOR))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock")
    async with app.router.lifespan_context(app), client as http:
        for name in ("customs", "inspection", "tax", "fx"):
            r = await http.get(f"/{name}/_health")
            assert r.json() == {"regulator": name, "status": "ok"}


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


# ---------------------------------------------------------------------- receipts under load
class SlowWindow:
    """A window that takes ``delay`` seconds over each receipt post and ``registry_delay`` over each
    registry read, noting when every post began and ended; it can answer 503 until ``down_until``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delay = 0.0
        self.registry_delay = 0.0
        self.down_until = 0.0
        self.posts: list[tuple[float, float, bytes]] = []  # (began, ended, body), in the order taken
        self.refused = 0
        self.in_flight = self.most = 0
        self.url = ""
        app = FastAPI()

        @app.post("/v1/regulators/receipts")
        async def receipts(request: Request) -> Response:
            body = await request.body()
            began = time.monotonic()
            if began < self.down_until:
                with self.lock:
                    self.refused += 1
                return Response(status_code=503)
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            await asyncio.sleep(self.delay)
            with self.lock:
                self.in_flight -= 1
                self.posts.append((began, time.monotonic(), body))
            return Response(status_code=201)

        @app.get("/v1/registry/enterprises/{code}")
        async def registry(code: str) -> Response:
            await asyncio.sleep(self.registry_delay)
            return Response(status_code=404)

        self.app = app

    def reset(self, *, delay: float = 0.0, registry_delay: float = 0.0) -> None:
        with self.lock:
            self.posts.clear()
            self.delay, self.registry_delay, self.down_until = delay, registry_delay, 0.0
            self.refused = self.in_flight = self.most = 0

    def taken(self) -> list[tuple[float, float, dict[str, str]]]:
        """(began, ended, return node fields) of every return node taken, in the order taken."""
        with self.lock:
            posts = list(self.posts)
        out = []
        for began, ended, body in posts:
            for node in etree.fromstring(body):
                out.append((began, ended, {etree.QName(c).localname: c.text or "" for c in node}))
        return out


@pytest.fixture(scope="module")
def slow_window() -> Any:
    fake = SlowWindow()
    with serving(fake.app, lifespan="off") as fake.url:
        yield fake


def _order_receipt(guid: str, status: str = "120") -> str:
    from schemas.catalog import FILED
    from schemas.receipts import DocumentReturn, receipt_xml

    return receipt_xml(FILED["311"], [DocumentReturn({"guid": guid, "ebpCode": "E1", "orderNo": guid}, status, "ok")])


def _assert_in_turn(posts: list[tuple[float, float, dict[str, str]]], statuses_: list[str]) -> None:
    """One document's receipts: taken in order, each posted only after the one before was taken."""
    assert [p[2]["returnStatus"] for p in posts] == statuses_
    for before, after in itertools.pairwise(posts):
        assert after[0] >= before[1], "a receipt overtook, or ran alongside, the one before it"


async def test_receipts_for_different_documents_go_out_together_one_documents_in_turn(slow_window: SlowWindow) -> None:
    from mock_customs.base import Context

    delay = 0.3
    slow_window.reset(delay=delay)
    ctx = Context("customs", MockSettings(gateway_url=slow_window.url, keys={"customs": KEY}, senders=16))
    try:
        started = time.monotonic()
        # One document's 120, 399, 800 queued among twelve receipts about twelve other documents.
        await ctx.send_receipt(_order_receipt("LIST-1", "120"))
        for i in range(6):
            await ctx.send_receipt(_order_receipt(f"DOC-{i}"))
        await ctx.send_receipt(_order_receipt("LIST-1", "399"))
        for i in range(6, 12):
            await ctx.send_receipt(_order_receipt(f"DOC-{i}"))
        await ctx.send_receipt(_order_receipt("LIST-1", "800"))
        await asyncio.wait_for(ctx.idle(), 10)
        elapsed = time.monotonic() - started
        taken = slow_window.taken()
        others = [p for p in taken if p[2]["guid"].startswith("DOC-")]
        assert len(others) == 12 and len(taken) == 15
        # Twelve posts of 0.3 s each are through in about the time of one (one at a time: 3.6 s) ...
        assert max(p[1] for p in others) - started < 1.2, [round(p[1] - started, 2) for p in others]
        assert slow_window.most >= 12
        # ... while the document's three went one after the other: about 3 × 0.3 s in all.
        _assert_in_turn([p for p in taken if p[2]["guid"] == "LIST-1"], ["120", "399", "800"])
        assert 3 * delay <= elapsed < 3 * delay + 1.0
        assert ctx.sender_state() == {"queued": 15, "sent": 15, "dropped": 0, "retries": 0, "pending": 0,
                                      "failing": 0, "senders": 16}
    finally:
        await ctx.stop()


async def test_customs_keeps_each_lists_receipts_in_order_with_no_step_delay(slow_window: SlowWindow) -> None:
    slow_window.reset(delay=0.05)
    settings = MockSettings(gateway_url=slow_window.url, keys={"customs": KEY}, delivery_token=DELIVERY,
                            match_wait=5.0, step_delay=0.0, senders=8)
    app = create_regulator_app(Customs, settings)
    builder = MessageBuilder(seed=next(_seeds))
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://customs", timeout=30) as http:
        h = Harness(app, http, None, builder)  # type: ignore[arg-type]
        decls = []
        for _ in range(6):
            parties = builder.parties()
            decl = builder.declaration(parties)
            await h.declare(decl, parties)
            decls.append(decl)
        await asyncio.wait_for(app.state.runtime.ctx.idle(), 15)
    taken = slow_window.taken()
    assert len(taken) == 6 * 6  # 120 for each of the four documents, then 399 and 800
    for decl in decls:
        guid = decl["inventory"].head["guid"]
        _assert_in_turn([p for p in taken if p[2]["guid"] == guid], ["120", "399", "800"])
    assert slow_window.most > 1


async def test_a_failing_window_gets_one_receipt_at_a_time_oldest_first(slow_window: SlowWindow) -> None:
    from mock_customs.base import Context

    slow_window.reset()
    slow_window.down_until = time.monotonic() + 0.6
    ctx = Context("customs", MockSettings(gateway_url=slow_window.url, keys={"customs": KEY}, senders=8,
                                          receipt_backoff=0.02, receipt_backoff_max=0.04))
    try:
        guids = [f"OUT-{i}" for i in range(8)]
        for guid in guids:
            await ctx.send_receipt(_order_receipt(guid))
        await asyncio.wait_for(ctx.idle(), 10)
        # Eight senders each retrying every 10–40 ms would knock ~100 times in 0.6 s; one probe, ~25.
        assert 8 <= slow_window.refused < 50, slow_window.refused
        taken = [p[2]["guid"] for p in slow_window.taken()]
        failed_first = [g for g in guids if g in taken]
        assert sorted(taken) == sorted(guids) and taken == failed_first  # through in the order queued
        state = ctx.sender_state()
        assert state["sent"] == 8 and state["failing"] == 0 and state["retries"] == slow_window.refused
    finally:
        await ctx.stop()


async def test_slow_registry_reads_hold_up_no_other_delivery(slow_window: SlowWindow) -> None:
    slow_window.reset(registry_delay=0.8)
    settings = MockSettings(gateway_url=slow_window.url, keys={"customs": KEY}, delivery_token=DELIVERY,
                            match_wait=5.0, step_delay=0.0)
    app = create_regulator_app(Customs, settings)
    builder = MessageBuilder(seed=next(_seeds))
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://customs", timeout=30) as http:
        h = Harness(app, http, None, builder)  # type: ignore[arg-type]
        parties, other = builder.parties(), builder.parties()
        decl = builder.declaration(parties)
        listing = asyncio.create_task(h.send("621", decl["inventory"], parties))  # reads its firms' ratings
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await h.send("311", builder.order(other), other)  # another delivery, meanwhile
        assert time.monotonic() - started < 0.5
        assert not listing.done()
        await listing
        # Two lists waiting: a delivery re-checks only the lists it can complete.
        second = builder.declaration(parties)
        await h.send("621", second["inventory"], parties)
        customs: Customs = app.state.runtime.regulator
        assert len(customs.waiting) == 4
        await h.declare(decl, parties, order=("waybill", "payment", "order"))
        await asyncio.wait_for(app.state.runtime.ctx.idle(), 10)
        assert customs.lists[(decl["inventory"].head["ebcCode"], decl["inventory"].head["orderNo"])].state == "released"
        assert customs.lists[(second["inventory"].head["ebcCode"], second["inventory"].head["orderNo"])].state == "waiting"
        assert len(customs.waiting) == 2
        await h.declare(second, parties, order=("order", "payment", "waybill"))
        await asyncio.wait_for(app.state.runtime.ctx.idle(), 10)
        assert customs.waiting == {}
        assert {c.state for c in customs.lists.values()} == {"released"}


# ---------------------------------------------------------------------- merged receipt messages
class StrictWindow:
    """A window that takes receipt messages as the real one does — whole or not at all: ``422`` for one
    that fails the CEB schema, ``409`` for one with a node about a document it does not know (a guid
    or invtNo starting ``BAD``) — taking ``delay`` seconds over each post and noting when it began
    and ended."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delay = 0.0
        self.posts: list[tuple[float, float, int, bytes]] = []  # (began, ended, status, body), as answered
        self.url = ""
        app = FastAPI()

        @app.post("/v1/regulators/receipts")
        async def receipts(request: Request) -> Response:
            body = await request.body()
            began = time.monotonic()
            await asyncio.sleep(self.delay)
            root = etree.fromstring(body)
            if not ceb_schema().validate(root):
                status = 422
            elif any((node.findtext(f"{C}guid") or node.findtext(f"{C}TaxHeadRd/{C}invtNo") or "").startswith("BAD")
                     for node in root):
                status = 409
            else:
                status = 201
            with self.lock:
                self.posts.append((began, time.monotonic(), status, body))
            return Response(status_code=status)

        self.app = app

    def reset(self, *, delay: float = 0.0) -> None:
        with self.lock:
            self.posts.clear()
            self.delay = delay

    def answered(self, status: int) -> list[tuple[float, float, etree._Element]]:
        with self.lock:
            return [(b, e, etree.fromstring(body)) for b, e, s, body in self.posts if s == status]

    def taken(self) -> list[tuple[float, float, dict[str, str]]]:
        """(began, ended, fields) of every return node taken, in the order taken."""
        return [(b, e, {etree.QName(c).localname: c.text or "" for c in node})
                for b, e, root in self.answered(201) for node in root]


@pytest.fixture(scope="module")
def strict_window() -> Any:
    fake = StrictWindow()
    with serving(fake.app, lifespan="off") as fake.url:
        yield fake


def _sender(window: StrictWindow, **overrides: Any) -> Any:
    from mock_customs.base import Context

    return Context("customs", MockSettings(**{"gateway_url": window.url, "keys": {"customs": KEY},
                                              "receipt_backoff": 0.01, "receipt_backoff_max": 0.05, **overrides}))


def _g(label: str) -> str:
    """A head guid (36 characters, as the schema wants) that reads as ``label``."""
    return f"{label:-<36}"


def _valid_receipt(label: str, status: str = "120", code: str = "311") -> str:
    from schemas.catalog import FILED
    from schemas.receipts import DocumentReturn, receipt_xml

    fields = {"guid": _g(label), "ebpCode": "E1", "ebcCode": "E2", "orderNo": label} if code == "311" \
        else {"guid": _g(label), "payCode": "P1", "payTransactionId": label}
    return receipt_xml(FILED[code], [DocumentReturn(fields, status, "ok")])


async def test_ready_receipts_for_many_documents_go_out_in_few_valid_messages(strict_window: StrictWindow) -> None:
    # Four senders, thirty order receipts and ten payment receipts ready at once: each sender takes its
    # share of them, one message type per message.
    strict_window.reset(delay=0.1)
    ctx = _sender(strict_window, senders=4)
    try:
        orders, payments = [f"ORD-{i:02d}" for i in range(30)], [f"PAY-{i:02d}" for i in range(10)]
        for i, guid in enumerate(orders):
            await ctx.send_receipt(_valid_receipt(guid))
            if i % 3 == 0:
                await ctx.send_receipt(_valid_receipt(payments[i // 3], code="411"))
        await asyncio.wait_for(ctx.idle(), 10)
        taken = strict_window.answered(201)
        assert not strict_window.answered(422) and not strict_window.answered(409)
        assert 2 <= len(taken) <= 8, [len(root) for _, _, root in taken]  # not 40
        for _, _, root in taken:
            assert ceb_schema().validate(root)
            assert 1 <= len(root) <= 100 and len({etree.QName(n).localname for n in root}) == 1
        guids = [p[2]["guid"] for p in strict_window.taken()]
        assert sorted(guids) == sorted(map(_g, orders + payments))  # every node exactly once
        assert ctx.sender_state()["sent"] == 40 and ctx.sender_state()["pending"] == 0
        assert ctx.message_state() == {"messages": len(taken), "merged": len(taken), "split": 0}

        # Sixteen senders all busy with a post each while thirty more receipts queue up: the first
        # sender free takes all thirty in one message.
        strict_window.reset(delay=0.2)
        await ctx.stop()
        ctx = _sender(strict_window)
        for i in range(16):
            await ctx.send_receipt(_valid_receipt(f"BUSY-{i:02d}"))
        await asyncio.sleep(0.05)
        for i in range(30):
            await ctx.send_receipt(_valid_receipt(f"LATE-{i:02d}"))
        await asyncio.wait_for(ctx.idle(), 10)
        sizes = sorted(len(root) for _, _, root in strict_window.answered(201))
        assert sizes == [1] * 16 + [30]
    finally:
        await ctx.stop()


async def test_merge_setting_caps_the_nodes_per_message(strict_window: StrictWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    strict_window.reset(delay=0.02)
    ctx = _sender(strict_window, senders=1, merge=7)
    try:
        for i in range(30):
            await ctx.send_receipt(_valid_receipt(f"CAP-{i:02d}"))
        await asyncio.wait_for(ctx.idle(), 10)
        assert [len(root) for _, _, root in strict_window.answered(201)] == [7, 7, 7, 7, 2]
    finally:
        await ctx.stop()

    # SWX_MOCK_MERGE=1: one node per post, however much is waiting.
    monkeypatch.setenv("SWX_MOCK_MERGE", "1")
    strict_window.reset()
    ctx = _sender(strict_window, senders=1)
    assert ctx.settings.merge == 1
    try:
        for i in range(30):
            await ctx.send_receipt(_valid_receipt(f"ONE-{i:02d}"))
        await asyncio.wait_for(ctx.idle(), 10)
        assert [len(root) for _, _, root in strict_window.answered(201)] == [1] * 30
        assert [p[2]["guid"] for p in strict_window.taken()] == [_g(f"ONE-{i:02d}") for i in range(30)]
        assert ctx.message_state() == {"messages": 30, "merged": 0, "split": 0}
    finally:
        await ctx.stop()


async def test_one_documents_receipts_stay_in_turn_across_merged_messages(strict_window: StrictWindow) -> None:
    strict_window.reset(delay=0.05)
    ctx = _sender(strict_window, senders=2)
    try:
        lists = [f"LIST-{i}" for i in range(10)]
        for status in ("120", "399", "800"):  # all thirty queued before anything is sent
            for guid in lists:
                await ctx.send_receipt(_valid_receipt(guid, status))
        await asyncio.wait_for(ctx.idle(), 10)
        taken = strict_window.taken()
        assert len(taken) == 30 and len(strict_window.answered(201)) <= 8  # merged: 2 per round, 3 rounds
        for guid in lists:
            _assert_in_turn([p for p in taken if p[2]["guid"] == _g(guid)], ["120", "399", "800"])
    finally:
        await ctx.stop()


async def test_a_refused_merged_message_is_split_and_the_good_receipts_arrive(strict_window: StrictWindow) -> None:
    strict_window.reset(delay=0.02)
    ctx = _sender(strict_window, senders=1)
    try:
        good = [f"GOOD-{i}" for i in range(10)]
        for guid in good[:5] + ["BAD-1"] + good[5:]:
            await ctx.send_receipt(_valid_receipt(guid))
        await ctx.send_receipt(_valid_receipt("GOOD-3", "399"))  # behind its 120, which is in the refused message
        await ctx.send_receipt(_valid_receipt("BAD-1", "399"))  # behind a receipt the window refuses for good
        await asyncio.wait_for(ctx.idle(), 10)
        refused = [root for _, _, root in strict_window.answered(409)]
        assert len(refused[0]) == 11  # the merged message, refused whole, then split ...
        alone = [(n.findtext(f"{C}guid"), n.findtext(f"{C}returnStatus")) for root in refused if len(root) == 1 for n in root]
        assert alone == [(_g("BAD-1"), "120"), (_g("BAD-1"), "399")]  # ... until BAD-1 is refused alone: dropped
        assert ctx.message_state()["split"] == len([root for root in refused if len(root) > 1])
        taken = strict_window.taken()
        assert sorted(p[2]["guid"] for p in taken if p[2]["returnStatus"] == "120") == [_g(x) for x in good]  # each exactly once
        _assert_in_turn([p for p in taken if p[2]["guid"] == _g("GOOD-3")], ["120", "399"])
        assert not [p for p in taken if p[2]["guid"] == _g("BAD-1")]
        assert ctx.sender_state()["sent"] == 11 and ctx.sender_state()["dropped"] == 2
    finally:
        await ctx.stop()


async def test_tax_bills_merge_into_one_valid_ceb816(strict_window: StrictWindow) -> None:
    from mock_customs.tax import assess, load_rates, tax_bill_xml

    strict_window.reset(delay=0.05)
    builder = MessageBuilder(seed=next(_seeds))
    bills = []
    for i in range(12):
        inv = builder.declaration(builder.parties(), lines=1 + i % 3)["inventory"]
        a = assess(inv.head, inv.lines, load_rates(), Decimal(5000))
        bills.append(tax_bill_xml({**inv.head, "invtNo": f"5100{2024}I{i:09d}"}, inv.lines, a))
    ctx = _sender(strict_window, senders=1)
    try:
        for bill in bills:
            await ctx.send_receipt(bill)
        await asyncio.wait_for(ctx.idle(), 10)
        taken = strict_window.answered(201)
        assert not strict_window.answered(422) and [len(root) for _, _, root in taken] == [12]
        invt_nos = [rd.findtext(f"{C}invtNo") for _, _, root in taken for rd in root.iter(f"{C}TaxHeadRd")]
        assert invt_nos == [f"51002024I{i:09d}" for i in range(12)]
        # The bills went unchanged: each Tax element as the stand-in wrote it.
        sent = [etree.tostring(tax, method="c14n") for _, _, root in taken for tax in root]
        assert sent == [etree.tostring(etree.fromstring(b)[0], method="c14n") for b in bills]
    finally:
        await ctx.stop()


async def test_customs_steps_falling_due_together_go_out_together(strict_window: StrictWindow) -> None:
    strict_window.reset(delay=0.05)
    settings = MockSettings(gateway_url=strict_window.url, keys={"customs": KEY}, delivery_token=DELIVERY,
                            match_wait=5.0, step_delay=0.05, senders=2)
    app = create_regulator_app(Customs, settings)
    builder = MessageBuilder(seed=next(_seeds))
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://customs", timeout=30) as http:
        h = Harness(app, http, None, builder)  # type: ignore[arg-type]
        # Twenty lists in one delivery: their 399s come due on one timer, one CEB622 (so do the 800s).
        parties = builder.parties()
        decls = [builder.declaration(parties) for _ in range(20)]
        for code, kind in (("311", "order"), ("411", "payment"), ("511", "waybill"), ("621", "inventory")):
            await h.send(code, [d[kind] for d in decls], parties)
        await asyncio.wait_for(app.state.runtime.ctx.idle(), 10)
        await asyncio.sleep(0.3)
        await asyncio.wait_for(app.state.runtime.ctx.idle(), 10)
        lists = [root for _, _, root in strict_window.answered(201) if etree.QName(root).localname == "CEB622Message"]
        assert [[n.findtext(f"{C}returnStatus") for n in root] for root in lists] == [["120"] * 20, ["399"] * 20,
                                                                                      ["800"] * 20]
        # Twelve declarations delivered one by one: their steps fall due apart, but two senders
        # posting to a slow window find several waiting and merge them.
        strict_window.reset(delay=0.05)
        more = []
        for _ in range(12):
            p = builder.parties()
            decl = builder.declaration(p)
            await h.declare(decl, p)
            more.append(decl)
        deadline = time.monotonic() + 10
        while len([x for x in strict_window.taken() if x[2]["returnStatus"] == "800"]) < 12:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        taken = strict_window.taken()
        assert len(taken) == 12 * 6 and not strict_window.answered(422)
        assert len(strict_window.answered(201)) < 12 * 6 * 2 // 3, len(strict_window.answered(201))
        for decl in more:
            _assert_in_turn([p for p in taken if p[2]["guid"] == decl["inventory"].head["guid"]], ["120", "399", "800"])
