"""Export end to end over HTTP (CEB.md §8.4): filings through the window, customs, inspection, tax and
FX stand-ins answering over their interfaces, the declaration view, the summary view and the trace.

A 9610 declaration from order to departure; a 9710 B2B list released without money received; a 9810
booking; a mismatch refused naming its field and code; a cancellation before arrival; a partial return;
a summary over three released B lists becoming a declaration whose lines cover exactly those lists,
refundable once they departed; a split arrival processed only when its last part is in; an A list
refused in a summary."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.builder import Doc
from tests.fixtures.parties import party_of
from tests.fixtures.server import eventually

pytestmark = pytest.mark.usefixtures("swx")
WAIT = 20.0


class Flow:
    """A firm filing export documents and reading the window back."""

    def __init__(self, swx, firm, builder) -> None:
        self.swx, self.firm, self.b = swx, firm, builder

    def file(self, code: str, docs: Doc | list[Doc], **kw: Any) -> dict:
        docs = docs if isinstance(docs, list) else [docs]
        r = self.swx.file(self.firm, self.b.message(code, docs, sender=party_of(self.firm), **kw))
        assert r.status_code == 201, r.text
        return r.json()

    def declare(self, decl: dict[str, Doc]) -> None:
        for code, kind in (("303", "order"), ("403", "collection"), ("505", "waybill"), ("603", "inventory")):
            if kind in decl:
                self.file(code, decl[kind])

    def view(self, decl: dict[str, Doc]) -> dict:
        h = decl["order"].head
        platform = h["ebcCode"] if h["ebpCode"] == "无" else h["ebpCode"]
        r = self.swx.http.get(f"/v1/declarations/{platform}/{h['orderNo']}", headers=self.firm.auth)
        assert r.status_code == 200, r.text
        return r.json()

    def state(self, decl: dict[str, Doc], *states: str) -> dict:
        def reached() -> dict | None:
            v = self.view(decl)
            return v if v["state"] in states else None

        try:
            return eventually(reached, WAIT)
        except AssertionError:
            raise AssertionError(f"never {states}: {self.view(decl)}") from None

    def numbered(self, decl: dict[str, Doc]) -> str:
        """Wait for customs' invtNo (604 120) and remember it on the list, for what names the list."""
        def number() -> str | None:
            return self.view(decl)["documents"].get("export_inventory", {}).get("invtNo")

        invt_no = eventually(number, WAIT)
        decl["inventory"].meta["invtNo"] = invt_no
        return invt_no

    def concluded(self, decl: dict[str, Doc]) -> None:
        def done() -> bool:
            v = self.view(decl)["documents"]["export_inventory"]["verdicts"].get("customs", {})
            return v.get("status") == "399"

        eventually(done, WAIT)
        self.numbered(decl)

    def summary(self, agent: str, cop_no: str, *states: str) -> dict:
        def reached() -> dict | None:
            r = self.swx.http.get(f"/v1/summaries/{agent}/{cop_no}", headers=self.firm.auth)
            assert r.status_code == 200, r.text
            return r.json() if r.json()["state"] in states else None

        return eventually(reached, WAIT)


@pytest.fixture
def flow(swx, filer, export_builder) -> Flow:
    return Flow(swx, filer, export_builder)


def test_a_9610_declaration_goes_from_order_to_departure(flow, swx):
    b = flow.b
    parties = b.parties(foreign_platform=False)
    decl = b.declaration(parties, order_type="E", trade_mode="9610", statistics_flag="B", collection=True, lines=2)
    flow.declare(decl)
    flow.concluded(decl)
    assert flow.view(decl)["state"] == "waiting"
    flow.file("607", b.consolidation([decl], parties))
    flow.file("507", b.arrival([decl], parties))
    released = flow.state(decl, "released")
    assert set(released["documents"]) >= {"export_order", "collection", "export_waybill", "export_inventory",
                                           "consolidation", "arrival"}
    flow.file("509", b.departure([decl], parties))
    departed = flow.state(decl, "departed")
    assert departed["documents"]["export_inventory"]["verdicts"]["customs"]["status"] == "899"
    assert departed["direction"] == "export" and departed["orderType"] == "E"
    h = decl["order"].head
    trace = swx.http.get("/v1/trace", params={"ebpCode": h["ebpCode"], "orderNo": h["orderNo"]},
                         headers=swx.operator).json()
    kinds = {e["entry"]["subject"].get("doc") for e in trace["entries"]}
    assert kinds >= {"export_order", "collection", "export_waybill", "export_inventory", "consolidation", "arrival", "departure"}


def test_a_9710_b2b_list_is_released_without_money_received(flow, swx):
    b = flow.b
    parties = b.parties()
    decl = b.declaration(parties, order_type="B", statistics_flag="B")
    assert "collection" not in decl
    flow.declare(decl)
    flow.concluded(decl)
    flow.file("607", b.consolidation([decl], parties))
    flow.file("507", b.arrival([decl], parties, bill_only=True))  # names only the master bill
    released = flow.state(decl, "released")
    assert released["orderType"] == "B" and "arrival" in released["documents"]
    h = decl["order"].head
    platform = h["ebcCode"] if h["ebpCode"] == "无" else h["ebpCode"]
    trace = swx.http.get("/v1/trace", params={"ebpCode": platform, "orderNo": h["orderNo"]}, headers=swx.operator).json()
    assert "arrival" in {e["entry"]["subject"].get("doc") for e in trace["entries"]}


def test_a_9810_overseas_warehouse_booking_is_released(flow):
    b = flow.b
    parties = b.parties()
    decl = b.declaration(parties, order_type="W", statistics_flag="B", with_transport=True)
    assert decl["inventory"].head["tradeMode"] == "9810"
    flow.declare(decl)
    flow.concluded(decl)
    flow.file("507", b.arrival([decl], parties))
    flow.state(decl, "released")


def test_a_list_that_disagrees_with_its_order_is_refused_naming_the_field(flow):
    b = flow.b
    parties = b.parties()
    decl = b.declaration(parties, order_type="B")
    decl["inventory"].lines[0]["qty"] = str(int(float(decl["inventory"].lines[0]["qty"])) + 1)
    line = decl["inventory"].lines[0]
    from decimal import Decimal

    line["totalPrice"] = str(Decimal(line["qty"]) * Decimal(line["price"]))
    flow.declare(decl)
    rejected = flow.state(decl, "rejected")
    assert any("-621051" in r and "qty" in r for r in rejected["reasons"]), rejected["reasons"]


def test_a_cancellation_before_arrival(flow):
    b = flow.b
    parties = b.parties()
    decl = b.declaration(parties, order_type="B")
    flow.declare(decl)
    flow.concluded(decl)
    flow.file("605", b.cancel(decl["inventory"], parties))
    cancelled = flow.state(decl, "cancelled")
    assert cancelled["documents"]["export_cancel"][0]["verdicts"]["customs"]["status"] == "399"


def test_a_partial_return_leaves_the_rest(flow):
    b = flow.b
    parties = b.parties()
    decl = b.declaration(parties, order_type="B", statistics_flag="B", lines=2)
    flow.declare(decl)
    flow.concluded(decl)
    flow.file("607", b.consolidation([decl], parties))
    flow.file("507", b.arrival([decl], parties))
    flow.file("509", b.departure([decl], parties))
    flow.state(decl, "departed")
    refund = b.refund(decl["inventory"], parties, gnums=[1], partial=True)
    flow.file("213", refund)
    returned = flow.state(decl, "returned")
    assert returned["returned"]["extent"] == "partly"
    lines = returned["returned"]["lines"]
    assert lines["2"]["returned"] == "0" and 0 < float(lines["1"]["returned"]) <= float(lines["1"]["declared"])


def _released(flow, parties, n: int, flag: str = "B") -> list[dict[str, Doc]]:
    b = flow.b
    shipment = b.shipment()
    decls = [b.declaration(parties, order_type="B", statistics_flag=flag, shipment=shipment) for _ in range(n)]
    for decl in decls:
        flow.declare(decl)
    for decl in decls:
        flow.concluded(decl)
    flow.file("607", b.consolidation(decls, parties))
    flow.file("507", b.arrival(decls, parties))
    for decl in decls:
        flow.state(decl, "released")
    return decls


def test_a_summary_over_three_released_lists_becomes_a_declaration_refundable_once_departed(flow, swx):
    b = flow.b
    parties = b.parties()
    decls = _released(flow, parties, 3)
    parts = b.summary([d["inventory"] for d in decls], parties)
    flow.file("701", parts)
    head = parts[0].head
    done = flow.summary(head["agentCode"], head["copNo"], "declared")
    assert done["sumNo"] and len(done["sumNo"]) == 18
    numbers = {d["inventory"].meta["invtNo"] for d in decls}
    assert {li["invtNo"] for dec in done["declarations"] for li in dec["lines"]} == numbers
    assert all(dec["entryId"] for dec in done["declarations"])
    assert {entry["invtNo"] for entry in done["lists"]} == numbers
    for decl in decls:
        assert flow.view(decl)["summary"]["sumNo"] == done["sumNo"]
    flow.file("509", b.departure(decls, parties))
    for decl in decls:
        flow.state(decl, "departed")
    ebc = decls[0]["inventory"].head["ebcCode"]

    def refundable() -> dict | None:
        r = swx.http.get(f"/mock/tax/refunds/{ebc}", headers=swx.operator)
        assert r.status_code == 200, r.text
        lines = [li for li in r.json()["lines"] if li["invtNo"] in numbers]
        ok = lines and all(li["status"] == "refundable" and li["entryId"] for li in lines)
        return r.json() if ok and {li["invtNo"] for li in lines} == numbers else None

    eventually(refundable, WAIT)


def test_a_simplified_list_is_refused_in_a_summary(flow):
    b = flow.b
    parties = b.parties()
    (a_list,) = _released(flow, parties, 1, flag="A")
    parts = b.summary([a_list["inventory"].meta["invtNo"]], parties)
    flow.file("701", parts)
    head = parts[0].head
    refused = flow.summary(head["agentCode"], head["copNo"], "rejected")
    assert "-701004" in (refused["info"] or ""), refused


def test_a_split_arrival_releases_only_when_its_last_part_is_in(flow):
    b = flow.b
    parties = b.parties()
    shipment = b.shipment()
    decls = [b.declaration(parties, order_type="B", statistics_flag="B", shipment=shipment) for _ in range(3)]
    for decl in decls:
        flow.declare(decl)
    for decl in decls:
        flow.concluded(decl)
    flow.file("607", b.consolidation(decls, parties))
    parts = b.arrival(decls, parties, per_part=1)
    assert len(parts) == 3
    flow.file("507", parts[0])
    flow.file("507", parts[2])
    import time

    time.sleep(0.5)
    assert all(flow.view(d)["state"] == "waiting" for d in decls)
    flow.file("507", parts[1])
    for decl in decls:
        flow.state(decl, "released")


def _over_goods_value(decl: dict[str, Doc]) -> None:
    from decimal import Decimal

    o = decl["order"].head
    decl["collection"].head["charge"] = str(Decimal(o["goodsValue"]) + Decimal(o["freight"]) + 1)


def _other_consignor(decl: dict[str, Doc], other: str) -> None:
    decl["inventory"].head["ebcCode"] = other


def _other_mode(decl: dict[str, Doc]) -> None:
    decl["inventory"].head["tradeMode"] = "9710"


@pytest.mark.parametrize("fault, code, field", [
    ("charge", "-621053", "charge"), ("consignor", "-621052", "ebcCode"), ("mode", "-621054", "tradeMode"),
])
def test_each_match_failure_is_refused_with_its_field_and_code(flow, fault, code, field):
    b = flow.b
    parties = b.parties(foreign_platform=False)  # under 无 a list of another seller is another declaration
    decl = b.declaration(parties, order_type="E", statistics_flag="B", collection=True)
    if fault == "charge":
        _over_goods_value(decl)
    elif fault == "consignor":
        other = b.parties()  # a registered seller of another declaration
        _other_consignor(decl, other.ebc.code)
        decl["inventory"].head["ebcName"] = other.ebc.name
    else:
        _other_mode(decl)
    flow.declare(decl)
    rejected = flow.state(decl, "rejected")
    assert any(code in r and field in r for r in rejected["reasons"]), rejected["reasons"]
