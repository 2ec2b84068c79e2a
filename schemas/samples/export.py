"""Export sample sets (CEB.md §8): sellers of the export plan's industries filing whole export
declarations -- order, collection, waybill, list, then master bill, arrival and departure per
shipment, cancellations, returns and summaries -- some with faults, and what the window and the
regulator stand-ins should make of each.

Why a module of its own: export has other documents, other parties and, above all, a filing order
that depends on customs' answers (a 507 needs the lists entered, a 509 the lists released, a 605,
213 or 701 the ``invtNo`` customs assigns). So each file line of the manifest may carry ``wait``
(declarations, and the state they must reach first) and ``fill`` (an ``invtNo`` written here as a
stand-in, to be replaced by the one the target assigned to that declaration's list, the message
then re-signed); ``swx replay`` honours both. ``phase`` says which step of §8.4 a file belongs to.

Expected codes come from the code that judges them -- the window's rules (gateway/intake:
export_rules, validate, keys, parties) through schemas.catalog, and the customs stand-in's own
codes (mock_customs/customs_export.py) -- never from a run of the window. Deterministic as the
import sets are: one seed, sorted JSON, no wall clock.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from schemas.builder import Doc, Party, money, number
from schemas.catalog import EXPORT
from schemas.export_builder import INDUSTRIES, ExportBuilder, ExportParties
from schemas.fields import field as field_of

from .declarations import ACCEPTED
from .faults import SCHEMA_REFUSED, XML_REFUSED, FaultKind, rule_refused

IMPORT_RECEIVER = "DXPEDCCEB0000002"
X = EXPORT
# Customs stand-in's own codes (mock_customs/customs_export.py, module docstring).
C_LINES, C_CONSIGNOR, C_CHARGE, C_TRADE_MODE, C_MISSING = "-621051", "-621052", "-621053", "-621054", "-621055"
C_RETURN_QTY, C_CANCEL_STATE, C_SUMMARY_STATE = "-625052", "-623005", "-701004"
I_PROHIBITED = "-621502"  # inspection: barred from export
NODES = {"export_order": ("OrderHead", "OrderList"), "collection": ("Receipts", None), "export_waybill": ("Logistics", None),
         "export_inventory": ("InventoryHead", "InventoryList"), "export_cancel": ("InvtCancel", None),
         "consolidation": ("WayBillHead", "WayBillList"), "arrival": ("ArrivalHead", "ArrivalList"),
         "departure": ("DepartureHead", "DepartureList"), "export_refund": ("InvtRefundHead", "InvtRefundList"),
         "refund_tally": ("InvtRefundDetail", None), "summary": ("SummaryApplyHead", "SummaryApplyList")}
CODE_OF = {m.kind: c for c, m in X.items()}

_K = FaultKind
EXPORT_KINDS: tuple[FaultKind, ...] = (
    _K("export.xml.malformed", "file", ("303", "603"), "400 xml 0001 (cut off)", "check"),
    _K("export.schema.missing-field", "file", ("303", "505", "603"), "422 schema 0002 (a required field left out)", "check"),
    _K("export.schema.too-long", "file", ("603",), "422 schema 0002 (logisticsNo over export's 32)", "check"),
    _K("export.schema.bad-number", "file", ("303", "403"), "422 schema 0002 (an amount with a unit)", "check"),
    _K("export.rule.order-type", "file", ("303",), "422 rule -301008 (orderType I)", "check"),
    _K("export.rule.order-sum", "file", ("303",), "422 rule -301008 (goodsValue ≠ Σ totalPrice)", "check"),
    _K("export.rule.charge", "file", ("403",), "422 rule -401009 (charge 0)", "check"),
    _K("export.rule.currency-code", "file", ("303", "403"), "422 rule family check (currency 'USD', not JGS-20)", "check"),
    _K("export.rule.trade-mode", "file", ("603",), "422 rule -621001 (tradeMode 1239)", "check"),
    _K("export.rule.zone-fields", "file", ("603",), "422 rule -621001 (1210 without emsNo)", "check", {"trade_mode": "1210"}),
    _K("export.rule.statistics-flag", "file", ("603",), "422 rule -621001 (A list with a licenseNo)", "check"),
    _K("export.rule.weights", "file", ("603",), "422 rule -621001 (netWeight > grossWeight)", "check"),
    _K("export.rule.total-price", "file", ("603",), "422 rule -621001 (totalPrice ≠ qty × price)", "check"),
    _K("export.rule.unsigned-list", "file", ("603",), "422 rule -621029 (a 603 without ds:Signature)", "check"),
    _K("export.rule.signature", "file", ("603",), "422 rule -621029 (signed, then changed)", "check"),
    _K("export.rule.unsigned-departure", "file", ("509",), "422 rule -509005 (a 509 without ds:Signature)", "check"),
    _K("export.rule.split-sequence", "file", ("507",), "422 rule -507006 (msgSeqNo over msgCount)", "check"),
    _K("export.rule.departure-transport", "file", ("509",), "422 rule -509001 (no voyageNo, not by post)", "check"),
    _K("export.rule.return-mode", "file", ("213",), "422 rule -625001 (213 tradeMode 9610)", "check"),
    _K("export.rule.cancel-reason", "file", ("605",), "422 rule -623012 (a blank reason)", "check"),
    _K("export.rule.summary-window", "file", ("701",), "422 rule -701001 (startTime without endTime)", "check"),
    _K("export.rule.dxp-receiver", "file", ("303", "505"), "422 rule 2001 (DxpMsg to the import receiver)", "check"),
    _K("export.rule.foreign-sender", "file", ("505", "603"), "403 rule 2002 (copCode of another firm)", "check"),
    _K("export.rule.unregistered-enterprise", "file", ("303", "603"), "422 rule -10102 (a code nobody registered)",
       "registry"),
    _K("export.rule.enterprise-name", "file", ("505", "603"), "422 rule -10102 (not the registered name)", "registry"),
    _K("export.rule.role-not-held", "file", ("603",), "422 rule -10101 (agentCode of a firm that is no agent)", "registry"),
    _K("export.rule.not-a-party", "file", ("505",), "422 rule -10101 (the site operator files a waybill it is not "
       "named in)", "registry"),
    _K("export.rule.duplicate-key", "file", ("303", "505", "603"), "422 rule duplicate code (-301010 / -504015 / "
       "-621004: appType 1 on a key already filed)", "window"),
    _K("export.rule.change-unknown-key", "file", ("303",), "422 rule -301009 (appType 2 before appType 1)", "window"),
    _K("export.customs.lines", "declaration", ("603",), f"rejected {C_LINES} (list qty ≠ order qty)", "regulator"),
    _K("export.customs.consignor", "declaration", ("603",), f"rejected {C_CONSIGNOR} (list names another seller)",
       "regulator"),
    _K("export.customs.charge", "declaration", ("403",), f"rejected {C_CHARGE} (charge over goodsValue + freight)",
       "regulator"),
    _K("export.customs.trade-mode", "declaration", ("603",), f"rejected {C_TRADE_MODE} (B2C order, 9710 list)", "regulator"),
    _K("export.customs.missing-collection", "declaration", (), f"rejected {C_MISSING} (B2C without its 403; after "
       "SWX_MOCK_MATCH_WAIT)", "regulator"),
    _K("export.inspection.prohibited", "declaration", ("603",), f"rejected {I_PROHIBITED} (inspection: an antique)",
       "regulator"),
    _K("export.customs.cancel-departed", "declaration", ("605",), f"605 refused {C_CANCEL_STATE}: the list departed; "
       "the declaration stays departed", "regulator"),
    _K("export.customs.return-too-much", "declaration", ("213",), f"213 refused {C_RETURN_QTY}: more than was "
       "exported; the declaration stays departed", "regulator"),
    _K("export.customs.summary-a-list", "summary", ("701",), f"summary rejected {C_SUMMARY_STATE} (names an A list)",
       "regulator"),
)
EXPORT_BY_NAME: dict[str, FaultKind] = {k.name: k for k in EXPORT_KINDS}
DECLARATION_CODES = {"export.customs.lines": C_LINES, "export.customs.consignor": C_CONSIGNOR,
                     "export.customs.charge": C_CHARGE, "export.customs.trade-mode": C_TRADE_MODE,
                     "export.customs.missing-collection": C_MISSING, "export.inspection.prohibited": I_PROHIBITED}
# Faults that need the declaration to go all the way out (a shipment), or a B list released.
NEEDS_DEPARTURE = {"export.rule.unsigned-departure", "export.rule.departure-transport", "export.customs.cancel-departed",
                   "export.customs.return-too-much", "export.rule.return-mode", "export.rule.split-sequence"}
STANDALONE = set(DECLARATION_CODES) | {"export.rule.cancel-reason"}


@dataclass
class XFiling:
    code: str
    sender: Party
    docs: list[Doc]
    group: str
    phase: int
    declarations: list[str] = field(default_factory=list)  # the declarations it concerns
    fault: str | None = None
    expect: dict[str, Any] = field(default_factory=lambda: dict(ACCEPTED))
    wait: dict[str, Any] | None = None
    fill: list[dict[str, str]] = field(default_factory=list)
    sign: bool | None = None
    cop: Party | None = None
    raw: Any = None
    receiver: str | None = None  # in a DxpMsg envelope to this receiver


@dataclass
class XDecl:
    id: str
    biz: ExportParties
    docs: dict[str, Doc]
    fault: str | None = None
    expect: dict[str, Any] = field(default_factory=lambda: {"state": "released"})
    filings: list[XFiling] = field(default_factory=list)

    @property
    def lookup(self) -> tuple[str, str]:
        """(code, orderNo) the declaration view finds it under: the seller's code for a foreign platform."""
        h = self.docs["order"].head
        return (h["ebcCode"] if h["ebpCode"] == "无" else h["ebpCode"]), h["orderNo"]


def edit(doc: Doc, head: dict[str, Any] | None = None, lines: dict[int, dict[str, Any]] | None = None) -> Doc:
    """A copy of ``doc`` with head/line fields changed (None removes), in schema order."""
    from schemas.fields import names

    head_node, line_node = NODES[doc.kind]

    def apply(values: dict[str, str], changes: dict[str, Any], node: str) -> dict[str, str]:
        out = dict(values)
        for k, v in changes.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = str(v)
        order = names(node, direction="export")
        return {k: out[k] for k in order if k in out} | {k: v for k, v in out.items() if k not in order}

    new_lines = [apply(li, (lines or {}).get(i, {}), line_node) if line_node else li for i, li in enumerate(doc.lines)]
    return Doc(doc.kind, apply(doc.head, head or {}, head_node), new_lines, doc.meta)


class ExportGenerator:
    def __init__(self, seed: int, declarations: int, invalid_ratio: float) -> None:
        self.seed, self.count, self.ratio = seed, declarations, invalid_ratio
        self.b = ExportBuilder(seed)
        self.rng = random.Random(f"swx export samples {seed}")
        self.decls: list[XDecl] = []
        self.extra: list[XFiling] = []  # shipment and summary filings
        self.summaries: list[dict[str, Any]] = []
        self.shipments = 0
        crng = random.Random(f"swx export samples cast {seed}")
        industries = sorted(INDUSTRIES)
        self.businesses = [ExportParties.generate(crng, industry=ind, foreign_platform=False) for ind in industries]
        self.businesses += [ExportParties.generate(crng, industry=ind, foreign_platform=True) for ind in industries[:2]]
        self.outsider = ExportParties.generate(crng, industry=industries[0]).ebc  # registered nowhere

    # ------------------------------------------------------------------ registrations
    def registrations(self) -> list[dict[str, Any]]:
        held: dict[str, dict[str, Any]] = {}
        for biz in self.businesses:
            for r in biz.registrations():
                e = held.setdefault(r["code"], {**r, "roles": []})
                e["roles"] = sorted(set(e["roles"]) | set(r["roles"]))
        return [held[c] for c in sorted(held)]

    def registered_roles(self) -> dict[str, set[str]]:
        return {e["code"]: set(e["roles"]) for e in self.registrations()}

    # ------------------------------------------------------------------ the plan
    def plan(self) -> list[tuple[str, Any]]:
        rng = self.rng
        n_faults = min(self.count, round(self.count * self.ratio))
        kinds: list[str] = []
        while len(kinds) < n_faults:
            cycle = [k.name for k in EXPORT_KINDS]
            rng.shuffle(cycle)
            kinds += cycle
        kinds = kinds[:n_faults]
        clean = self.count - n_faults
        units: list[tuple[str, Any]] = [("standalone", k) for k in kinds if k in STANDALONE]
        cancels = min(clean, max(1 if clean >= 5 else 0, round(clean * 0.08)))  # clean declarations withdrawn (605)
        units += [("standalone", None)] * cancels
        clean -= cancels
        shipped = [k for k in kinds if k not in STANDALONE]
        # every other faulty declaration rides in a shipment of 2-5, with clean ones filling it up
        while shipped or clean > 0:
            size = rng.randint(2, 5)
            members: list[str | None] = []
            while len(members) < size and (shipped or clean > 0):
                if shipped and (rng.random() < 0.5 or clean <= 0):
                    members.append(shipped.pop())
                else:
                    members.append(None)
                    clean -= 1
            units.append(("shipment", members))
        rng.shuffle(units)
        return units

    def run(self) -> None:
        for unit, arg in self.plan():
            if unit == "standalone":
                self.standalone(arg)
            else:
                self.shipment(arg)

    # ------------------------------------------------------------------ declarations
    def new_decl(self, biz: ExportParties, fault: str | None, *, shipment: dict | None = None,
                 with_transport: bool | None = None) -> XDecl:
        rng, b = self.rng, self.b
        fk = EXPORT_BY_NAME.get(fault) if fault else None
        mode = (fk.needs.get("trade_mode") if fk else None) or rng.choices(("9610", "1210", "9710", "9810"), (6, 1, 2, 1))[0]
        if fault in ("export.customs.charge", "export.customs.missing-collection", "export.customs.trade-mode",
                     "export.rule.charge", "export.rule.return-mode"):
            mode = "9610"
        order_type = {"9610": "E", "1210": "E", "9710": "B", "9810": "W"}[mode]
        lines = rng.choices((1, 2, 3), (5, 3, 2))[0]
        if fault == "export.customs.return-too-much":
            lines = 1
        flag = {"export.rule.statistics-flag": "A", "export.customs.summary-a-list": "A",
                "export.rule.summary-window": "B"}.get(fault or "")
        docs = b.declaration(biz, order_type=order_type, trade_mode=mode, lines=lines, shipment=shipment,
                             statistics_flag=flag, with_transport=with_transport,
                             collection=True if order_type == "E" else rng.random() < 0.25)
        d = XDecl(f"x{len(self.decls) + 1:05d}", biz, docs, fault)
        self.decls.append(d)
        return d

    def core_filings(self, d: XDecl) -> None:
        biz = d.biz
        kinds = ["order", "collection", "waybill", "inventory"]
        if self.rng.random() < 0.15:
            kinds = ["waybill", "order", "collection", "inventory"]
        for kind in kinds:
            doc = d.docs.get(kind)
            if doc is None:
                continue
            code = CODE_OF[doc.kind]
            sender = self.sender(biz, code, doc)
            d.filings.append(XFiling(code, sender, [doc], d.id, 1, [d.id]))

    @staticmethod
    def sender(biz: ExportParties, code: str, doc: Doc | None = None) -> Party:
        if code == "403" and doc is not None and not doc.head.get("payCode"):
            return biz.ebc  # a foreign payment firm or cash: the seller files its own receipt
        return biz.sender_for(code)

    def standalone(self, fault: str) -> None:
        """A declaration that ends before transport: refused by customs or inspection, or cancelled."""
        biz = self.rng.choice(self.businesses)
        d = self.new_decl(biz, fault)
        if fault in DECLARATION_CODES:
            self.declaration_fault(d, fault)
        self.core_filings(d)
        if fault == "export.rule.cancel-reason" or fault is None:
            self.cancel(d, fault)
        if fault == "export.customs.missing-collection":
            d.filings = [f for f in d.filings if f.code != "403"]

    def declaration_fault(self, d: XDecl, fault: str) -> None:
        docs, rng = d.docs, self.rng
        inv = docs["inventory"]
        if fault == "export.customs.lines":
            line = inv.lines[0]
            qty = Decimal(line["qty"]) + 1
            per = Decimal(line["qty1"]) / Decimal(line["qty"])
            change = {"qty": number(qty), "totalPrice": money(qty * Decimal(line["price"])), "qty1": number(qty * per)}
            if line.get("qty2"):
                change["qty2"] = number(qty * Decimal(line["qty2"]) / Decimal(line["qty"]))
            docs["inventory"] = edit(inv, None, {0: change})
        elif fault == "export.customs.consignor":
            other = next(x.ebc for x in self.businesses if x.ebc.code != d.biz.ebc.code)
            docs["inventory"] = edit(inv, {"ebcCode": other.code, "ebcName": other.name})
        elif fault == "export.customs.charge":
            o = docs["order"].head
            docs["collection"] = edit(docs["collection"], {"charge": money(Decimal(o["goodsValue"]) + Decimal(o["freight"])
                                                                           + Decimal(rng.randint(10, 90)))})
        elif fault == "export.customs.trade-mode":
            docs["inventory"] = edit(inv, {"tradeMode": "9710"})
        elif fault == "export.inspection.prohibited":
            name = rng.choice(("清代古董青花瓷瓶", "民国古董木雕摆件"))
            docs["order"] = edit(docs["order"], None, {0: {"itemName": name}})
            docs["inventory"] = edit(inv, None, {0: {"gname": name, "itemName": name}})
        d.expect = {"state": "rejected", "code": DECLARATION_CODES[fault]}

    def cancel(self, d: XDecl, fault: str | None) -> None:
        inv = d.docs["inventory"]
        placeholder = self.b.invt_no(inv)
        doc = self.b.cancel(inv, d.biz, placeholder)
        fill = [{"field": "invtNo", "placeholder": placeholder, "declaration": d.id}]
        wait = {"declarations": [d.id], "until": "listed"}
        if fault == "export.rule.cancel-reason":
            bad = edit(doc, {"guid": self.b.guid(), "reason": " "})
            d.filings.append(XFiling("605", d.biz.agent, [bad], d.id, 4, [d.id], fault, rule_refused("-623012"), wait, fill))
        d.filings.append(XFiling("605", d.biz.agent, [doc], d.id, 4, [d.id], wait=wait, fill=fill))
        d.expect = {"state": "cancelled"}

    # ------------------------------------------------------------------ shipments
    def shipment(self, members: list[str | None]) -> None:
        rng, b = self.rng, self.b
        self.shipments += 1
        sid = f"s{self.shipments:04d}"
        biz = rng.choice(self.businesses)
        ship = b.shipment()
        consolidate = rng.random() < 0.5
        decls = []
        for fault in members:
            wt = not (consolidate and rng.random() < 0.6)
            d = self.new_decl(biz, fault, shipment=ship, with_transport=wt)
            self.core_filings(d)
            decls.append(d)
        ids = [d.id for d in decls]
        items = [d.docs for d in decls]
        faults = [d.fault for d in decls if d.fault]
        depart = any(f in NEEDS_DEPARTURE for f in faults) or rng.random() < 0.75
        if consolidate:
            parts = b.consolidation(items, biz, per_part=2 if len(items) > 2 and rng.random() < 0.4 else None,
                                    with_invt_no=False)
            for p in parts:
                self.extra.append(XFiling("607", biz.agent, [p], sid, 2, list(ids),
                                          wait={"declarations": ids, "until": "listed"}))
        bill_only = consolidate and rng.random() < 0.3
        split = "export.rule.split-sequence" in faults or (len(items) > 2 and rng.random() < 0.4)
        arrivals = b.arrival(items, biz, bill_only=bill_only, per_part=None if bill_only or not split else 2)
        if "export.rule.split-sequence" in faults and len(arrivals) == 1:
            arrivals = b.arrival(items, biz, per_part=max(1, len(items) - 1))
            if len(arrivals) == 1:  # one parcel: declare it the first of two parts, then send both parts as one
                arrivals = b.arrival(items, biz)
        for i, p in enumerate(arrivals):
            wait = {"declarations": ids, "until": "listed"}
            if i == 0 and "export.rule.split-sequence" in faults:
                n = int(p.head["msgCount"])
                bad = edit(p, {"guid": b.guid(), "msgSeqNo": str(n + 1)})
                self.extra.append(XFiling("507", biz.operator, [bad], sid, 3, list(ids), "export.rule.split-sequence",
                                          rule_refused("-507006"), wait))
            self.extra.append(XFiling("507", biz.operator, [p], sid, 3, list(ids), wait=wait))
        if not depart:
            return
        deps = b.departure(items, biz, per_part=2 if len(items) > 2 and rng.random() < 0.4 else None)
        released = {"declarations": ids, "until": "released"}
        for i, p in enumerate(deps):
            if i == 0 and "export.rule.unsigned-departure" in faults:
                self.extra.append(XFiling("509", biz.logistics, [edit(p, {"guid": b.guid()})], sid, 5, list(ids),
                                          "export.rule.unsigned-departure", rule_refused("-509005"), released, sign=False))
            if i == 0 and "export.rule.departure-transport" in faults and p.head.get("trafMode") != "6":
                self.extra.append(XFiling("509", biz.logistics, [edit(p, {"guid": b.guid(), "voyageNo": None})], sid, 5,
                                          list(ids), "export.rule.departure-transport", rule_refused("-509001"), released))
            self.extra.append(XFiling("509", biz.logistics, [p], sid, 5, list(ids), wait=released))
        for d in decls:
            d.expect = {"state": "departed"}
        # after departure: returns, a refused cancel, a summary over the B lists
        returned = set()
        for d in decls:
            if d.fault == "export.customs.cancel-departed":
                inv = d.docs["inventory"]
                ph = b.invt_no(inv)
                d.filings.append(XFiling("605", biz.agent, [b.cancel(inv, biz, ph)], d.id, 6, [d.id], d.fault,
                                         wait={"declarations": [d.id], "until": "departed"},
                                         fill=[{"field": "invtNo", "placeholder": ph, "declaration": d.id}]))
            elif d.fault in ("export.customs.return-too-much", "export.rule.return-mode") or (
                    d.fault is None and rng.random() < 0.2):
                self.refund(d, d.fault)
                returned.add(d.id)
        lists = [d for d in decls if d.docs["inventory"].head["statisticsFlag"] == "B" and d.id not in returned]
        a_lists = [d for d in decls if d.docs["inventory"].head["statisticsFlag"] == "A"]
        wants_a = "export.customs.summary-a-list" in faults
        window = "export.rule.summary-window" in faults
        if (lists or wants_a) and (wants_a or window or rng.random() < 0.7):
            self.summary(biz, sid, lists, a_lists if wants_a else [], window)

    def refund(self, d: XDecl, fault: str | None) -> None:
        b, rng, biz = self.b, self.rng, d.biz
        inv = d.docs["inventory"]
        ph = b.invt_no(inv)
        fill = [{"field": "invtNo", "placeholder": ph, "declaration": d.id}]
        departed = {"declarations": [d.id], "until": "departed"}
        qtys = [Decimal(li["qty"]) for li in inv.lines]
        partial = fault is None and (rng.random() < 0.5) and (len(inv.lines) > 1 or qtys[0] > 1)
        gnums = None
        if partial and len(inv.lines) > 1 and rng.random() < 0.5:
            gnums = [1]
        doc = b.refund(inv, biz, ph, gnums=gnums, partial=partial and gnums is None)
        if fault == "export.customs.return-too-much":
            line = doc.lines[0]
            more = Decimal(line["qty"]) + 1
            doc = edit(doc, None, {0: {"qty": number(more), "qty1": number(more * Decimal(line["qty1"]) / Decimal(line["qty"]))}})
            d.filings.append(XFiling("213", biz.agent, [doc], d.id, 6, [d.id], fault, wait=departed, fill=fill))
            return  # refused by customs: nothing is returned; the declaration stays departed
        if fault == "export.rule.return-mode":
            bad = edit(doc, {"guid": b.guid(), "tradeMode": "9610"})
            d.filings.append(XFiling("213", biz.agent, [bad], d.id, 6, [d.id], fault, rule_refused("-625001"), departed, fill))
        d.filings.append(XFiling("213", biz.agent, [doc], d.id, 6, [d.id], wait=departed, fill=fill))
        tally = b.tally(doc, biz)
        tfill = fill if tally.head.get("invtNo") else []
        d.filings.append(XFiling("215", biz.operator, [tally], d.id, 7, [d.id],
                                 wait={"declarations": [d.id], "until": "returned"}, fill=tfill))
        back = {li["gnum"]: Decimal(li["qty"]) for li in doc.lines}
        full = all(back.get(li["gnum"], Decimal(0)) >= Decimal(li["qty"]) for li in inv.lines)
        d.expect = {"state": "returned", "extent": "fully" if full else "partly"}

    def summary(self, biz: ExportParties, sid: str, lists: list[XDecl], a_lists: list[XDecl], window_fault: bool) -> None:
        b = self.b
        docs = [d.docs["inventory"] for d in lists]
        names: list[Doc | str] = [*docs, *(b.invt_no(d.docs["inventory"]) for d in a_lists)]
        office = (docs or [d.docs["inventory"] for d in a_lists])[0].head["customsCode"]
        parts = b.summary(names, biz, per_part=2 if len(names) > 2 and self.rng.random() < 0.4 else None,
                          customsCode=office)
        fill = [{"field": "invtNo", "placeholder": b.invt_no(d.docs["inventory"]), "declaration": d.id}
                for d in (*lists, *a_lists)]
        ids = [d.id for d in (*lists, *a_lists)]
        wait = {"declarations": ids, "until": "released"}
        if window_fault:
            h = parts[0].head
            bad = edit(parts[0], {"guid": b.guid(), "copNo": h["copNo"][:-2] + "99", "startTime": h["appTime"],
                                  "msgCount": "1", "msgSeqNo": "1"})
            self.extra.append(XFiling("701", biz.agent, [bad], f"{sid}-summary", 8, ids, "export.rule.summary-window",
                                      rule_refused("-701001"), wait,
                                      [x for x in fill if x["placeholder"] in {li["invtNo"] for li in bad.lines}]))
        for p in parts:
            mine = {li["invtNo"] for li in p.lines}
            self.extra.append(XFiling("701", biz.agent, [p], f"{sid}-summary", 8, ids, wait=wait,
                                      fill=[x for x in fill if x["placeholder"] in mine]))
        h = parts[0].head
        expect = {"state": "rejected", "code": C_SUMMARY_STATE} if a_lists else {"state": "declared"}
        self.summaries.append({"summary": f"{sid}-summary", "agentCode": h["agentCode"], "copNo": h["copNo"],
                               "fault": "export.customs.summary-a-list" if a_lists else None, "expect": expect,
                               "lists": [d.id for d in lists], "named": ids})

    # ------------------------------------------------------------------ file faults
    def file_faults(self) -> None:
        for d in self.decls:
            fk = EXPORT_BY_NAME.get(d.fault or "")
            if fk is None or fk.level != "file" or d.fault in NEEDS_DEPARTURE or d.fault in (
                    "export.rule.cancel-reason", "export.rule.summary-window"):
                continue
            self.file_fault(d, d.fault)

    def file_fault(self, d: XDecl, kind: str) -> None:
        rng, b = self.rng, self.b
        fk = EXPORT_BY_NAME[kind]
        have = [c for c in fk.types if any(f.code == c and f.fault is None for f in d.filings)]
        code = rng.choice(have)
        at = next(i for i, f in enumerate(d.filings) if f.code == code and f.fault is None)
        clean = d.filings[at]
        doc = clean.docs[0]
        fresh = {"guid": b.guid()}
        mtype = X[code]
        after = False
        opts: dict[str, Any] = {}
        expect: dict[str, Any]
        new = doc
        if kind == "export.xml.malformed":
            expect = XML_REFUSED
            new = edit(doc, fresh)
            share = rng.randint(40, 90)
            opts["raw"] = lambda body, s=share: body[: len(body) * s // 100]
        elif kind == "export.schema.missing-field":
            drop = {"303": "orderType", "505": "grossWeight", "603": "statisticsFlag"}[code]
            new, expect = edit(doc, {**fresh, drop: None}), SCHEMA_REFUSED
        elif kind == "export.schema.too-long":
            no = doc.head["logisticsNo"]
            while len(no) <= (field_of("InventoryHead", "logisticsNo", "export").max_len or 32):
                no += "0"
            new, expect = edit(doc, {**fresh, "logisticsNo": no}), SCHEMA_REFUSED
        elif kind == "export.schema.bad-number":
            name = "goodsValue" if code == "303" else "charge"
            new, expect = edit(doc, {**fresh, name: doc.head[name] + "元"}), SCHEMA_REFUSED
        elif kind == "export.rule.order-type":
            new, expect = edit(doc, {**fresh, "orderType": "I"}), rule_refused(mtype.check_code)
        elif kind == "export.rule.order-sum":
            gv = Decimal(doc.head["goodsValue"]) + Decimal(10)
            new, expect = edit(doc, {**fresh, "goodsValue": money(gv)}), rule_refused(mtype.check_code)
        elif kind == "export.rule.charge":
            new, expect = edit(doc, {**fresh, "charge": "0"}), rule_refused(mtype.check_code)
        elif kind == "export.rule.currency-code":
            new, expect = edit(doc, {**fresh, "currency": "USD"}), rule_refused(mtype.check_code)
            if code == "303":
                new = edit(new, None, {i: {"currency": "USD"} for i in range(len(doc.lines))})
        elif kind == "export.rule.trade-mode":
            new, expect = edit(doc, {**fresh, "tradeMode": "1239"}), rule_refused(mtype.check_code)
        elif kind == "export.rule.zone-fields":
            new, expect = edit(doc, {**fresh, "emsNo": None}), rule_refused(mtype.check_code)
        elif kind == "export.rule.statistics-flag":
            new = edit(doc, {**fresh, "licenseNo": f"LIC{b._digits(10)}"})
            expect = rule_refused(mtype.check_code)
        elif kind == "export.rule.weights":
            net = Decimal(doc.head["grossWeight"]) + Decimal("0.5")
            new, expect = edit(doc, {**fresh, "netWeight": number(net)}), rule_refused(mtype.check_code)
        elif kind == "export.rule.total-price":
            line = doc.lines[0]
            new = edit(doc, fresh, {0: {"totalPrice": money(Decimal(line["totalPrice"]) + Decimal(1))}})
            expect = rule_refused(mtype.check_code)
        elif kind == "export.rule.unsigned-list":
            new, expect, opts["sign"] = edit(doc, fresh), rule_refused("-621029"), False
        elif kind == "export.rule.signature":
            new, expect = edit(doc, fresh), rule_refused("-621029")
            g = doc.head["grossWeight"]
            was = f"<ceb:grossWeight>{g}</ceb:grossWeight>".encode()
            now = f"<ceb:grossWeight>{Decimal(g) + 1}</ceb:grossWeight>".encode()
            opts["raw"] = lambda body, a=was, z=now: body.replace(a, z, 1)
        elif kind == "export.rule.dxp-receiver":
            new, expect, opts["receiver"] = edit(doc, fresh), rule_refused("2001"), IMPORT_RECEIVER
        elif kind == "export.rule.foreign-sender":
            who = d.biz.ebc if code == "603" else d.biz.agent
            new, expect, opts["cop"] = edit(doc, fresh), rule_refused("2002", 403), who
        elif kind == "export.rule.unregistered-enterprise":
            o = self.outsider
            name = "ebcCode" if code == "303" else "agentCode"
            new = edit(doc, {**fresh, name: o.code, name.replace("Code", "Name"): o.name})
            expect = rule_refused("-10102")
        elif kind == "export.rule.enterprise-name":
            name = "logisticsName" if code == "505" else "agentName"
            new, expect = edit(doc, {**fresh, name: doc.head[name][2:]}), rule_refused("-10102")
        elif kind == "export.rule.role-not-held":
            roles = self.registered_roles()
            who = next(x.ebc for x in self.businesses if "agent" not in roles.get(x.ebc.code, set()))
            new = edit(doc, {**fresh, "agentCode": who.code, "agentName": who.name})
            expect, opts["sender"] = rule_refused("-10101"), who
        elif kind == "export.rule.not-a-party":
            roles = self.registered_roles()
            op = d.biz.operator
            assert "agent" not in roles[op.code]
            new, expect, opts["sender"] = edit(doc, fresh), rule_refused("-10101"), op
        elif kind == "export.rule.duplicate-key":
            new, expect, after = edit(doc, fresh), rule_refused(mtype.duplicate_code), True
        elif kind == "export.rule.change-unknown-key":
            new, expect = edit(doc, {**fresh, "appType": "2"}), rule_refused(mtype.missing_code)
        else:
            raise AssertionError(f"no construction for {kind}")
        bad = replace(clean, docs=[new], fault=kind, expect=expect, sender=opts.pop("sender", clean.sender), **opts)
        d.filings.insert(at + 1 if after else at, bad)

    # ------------------------------------------------------------------ output
    def serialise(self, f: XFiling) -> bytes:
        sender = f.cop or f.sender
        body = self.b.message(f.code, f.docs, sender=sender, sign=f.sign)
        if f.raw is not None:
            body = f.raw(body)
        if f.receiver is not None:
            body = self.b.wrap_dxp(body, sender_id=f.sender.dxp_id, receiver_id=f.receiver)
        return body

    def ordered(self) -> list[XFiling]:
        """Every filing, by phase; within a phase, declarations and shipments as drawn."""
        everything = [f for d in self.decls for f in d.filings] + self.extra
        return sorted(everything, key=lambda f: f.phase)  # stable: drawing order within a phase


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def generate_export(out: Path, g: ExportGenerator, start_seq: int = 0) -> tuple[list[str], list[str], Counter, int]:
    """Write ``g``'s files into ``out``/messages; return (file lines, closing lines, files by type, refused)."""
    g.run()
    g.file_faults()
    lines, seq, by_type, refused = [], start_seq, Counter(), 0
    for f in g.ordered():
        seq += 1
        label = f.declarations[0] if f.group.startswith("x") else f.group
        name = f"messages/{seq:05d}-{label}-{f.code}.xml"
        (out / name).write_bytes(g.serialise(f))
        by_type[f.code] += 1
        refused += f.expect["outcome"] != "accepted"
        entry = {"type": "file", "file": name, "declaration": f.group if f.group.startswith("x") else None,
                 "group": f.group, "declarations": f.declarations, "messageType": f.code, "direction": "export",
                 "sender": f.sender.code, "fault": f.fault, "expect": f.expect, "phase": f.phase}
        if f.wait:
            entry["wait"] = f.wait
        if f.fill:
            entry["fill"] = f.fill
        lines.append(_json(entry))
    closing = []
    for d in g.decls:
        code, order_no = d.lookup
        closing.append(_json({"type": "declaration", "declaration": d.id, "direction": "export", "ebpCode": code,
                              "orderNo": order_no, "fault": d.fault, "after": None, "expect": d.expect}))
    for s in g.summaries:
        closing.append(_json({"type": "summary", **s}))
    return lines, closing, by_type, refused


def export_readme(s: Any, g: ExportGenerator, kinds: tuple[FaultKind, ...]) -> list[str]:
    width = max(len(k.name) for k in kinds)
    phases = Counter(f.phase for f in g.ordered())
    out = [
        "Export (CEB.md §8)",
        "------------------",
        f"Export declarations: {len(g.decls)} of {len(g.businesses)} sellers (industries: "
        + ", ".join(sorted({b.industry for b in g.businesses})) + f"); {g.shipments} shipments, {len(g.summaries)} summaries",
        "Expected: " + ", ".join(f"{n} {st}" for st, n in sorted(Counter(
            d.expect["state"] + (f" {d.expect['extent']}" if d.expect.get("extent") else "") for d in g.decls).items())),
        "Phases (files): " + ", ".join(f"{p}: {n}" for p, n in sorted(phases.items()))
        + "  (1 三单 + list, 2 607, 3 507, 4 605, 5 509, 6 213 / refused 605, 7 215, 8 701)",
        "",
        "A file line with `wait` is filed only once those declarations reach the state named (listed: customs",
        "gave the list its invtNo; released; departed; returned). `fill` names an invtNo written here as a",
        "stand-in: the replay puts the one the target assigned to that declaration's list in its place and",
        "signs the message again (the test identity). Summaries (type summary) are read at",
        "GET /v1/summaries/{agentCode}/{copNo}; a foreign platform's (无) declaration under the seller's code.",
        "",
        "Export fault kinds (carrying each, and the expected answer):",
    ]
    for k in kinds:
        n = s.faults.get(k.name, 0)
        if n:
            out.append(f"  {k.name:<{width}}  {n:>4}  {k.outcome}  [{k.confirmed}]")
    missing = [k.name for k in kinds if k.name not in s.faults]
    if missing:
        out += ["", f"Not in this set ({len(missing)}): " + ", ".join(missing)]
    out += ["", "export.customs.missing-collection is refused only after customs' match wait (SWX_MOCK_MATCH_WAIT).",
            "Goods on inspection's export restricted list are looked at on site when the 507 names them (500, then 399).", ""]
    return out
