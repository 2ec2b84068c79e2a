"""Customs on the export half (CEB.md §8): takes in orders, collections and waybills, matches each
export list against them, follows its parcels through consolidation, arrival and departure, and
folds released B lists into summary declarations (CEB792).

Its own module because export shares nothing with import but the shape of the work (a list waits
for its documents, then is decided in steps ``step_delay`` apart): other keys, other documents,
no buyer and no quota. :class:`~mock_customs.customs.Customs` hands it every export message.

What it answers (every receipt valid under the official export schema, ``export_wire``):

- order 303, collection 403: ``120`` stored (appType 3 removes, ``100`` with the family's missing code
  when there is nothing to remove); waybill 505: ``399``.
- list 603: ``120`` entered at once, with the ``invtNo`` customs assigns (customsCode + year + ``E`` +
  9 digits); refused ``100`` instead when another live list has its (agentCode, copNo), its order or
  its waybill (``-621004``). Then it waits (``match_wait``) for its order (ebpCode, orderNo; ebcCode,
  orderNo when ebpCode is 无), its waybill (logisticsCode, logisticsNo) and, for orderType E only
  (tradeMode 9610/1210), the order's collection; matched, it is ``399`` concluded ``step_delay`` later
  (``300`` manual review first when the seller or agent is rated dishonest: ``POST
  /_admin/export/review``), or ``100`` naming every mismatch.
- consolidation 607: each named waybill's list gets the master bill (billNo, trafName, voyageNo);
  ``608 120``, or ``100`` when a waybill has no live list or a line's invtNo is another list's.
- arrival 507: ``508 399``; the lists of its waybills (or, with no lines, of every waybill a 607 put
  under its billNo) are on site, and each concluded one is released: ``604 800``.
- departure 509: ``510 399`` and those lists closed ``604 899``. All or nothing: ``100`` if a waybill
  is unknown, its list not released, or the list has no master bill (own billNo or a 607).
- cancellation 605: ``606 399`` and the list void, while it is entered, in review, concluded or
  released, and in no live summary; else ``100``.
- return 213: ``214 120`` then ``800``; the quantities are taken off the original list. Tally 215:
  ``216 399`` when a return names that waybill.
- summary 701: ``702 399`` with a ``sumNo`` (customsCode + year + ``H`` + 9 digits) on each part, then
  one CEB792 per declaration (declSeqNo ``E`` + date + 9 digits; lines grouped per summaryFlag 1
  seller / 2 seller + ownerCode, items per itemNameFlag 1 line itemName / 0 gcode, each list line →
  ``gseqno``; grossWeight/netWeight summed over its lists), and ``step_delay`` later a second 792
  per declaration with decTmpNo, decPreNo, entryId and decState ``10``, without lines.
- split filings (507, 509, 607, 701): processed once every part has arrived (``export_wire.SplitParts``),
  each part answered with its own receipt.

Error codes at the start of ``returnInfo``. Official (§8.5): ``-621004`` duplicate list, ``-621011``
/ ``-623003`` / ``-625018`` no such list, ``-621012`` / ``-623005`` / ``-625022`` the list's state
forbids it, ``-625006`` a return without lines, ``-625209`` a return line not in the original list,
the families' missing codes (``-301009``, ``-401006``, ``-504014``) for deleting what is not there.
The message families without codes of their own (507, 509, 607, 215, 701): ``-(code × 1000 + n)``,
n = 1 check failed, 2 already processed, 3 referenced document unknown, 4 its state forbids it,
6 split sequence broken. Ours, in the list and return families:

========== =====================================================================================
``-621051`` list lines ≠ order lines (gnum one to one; qty, unit, price, totalPrice, currency, itemName)
``-621052`` consignor: list ``ebcCode`` ≠ the order's (or the waybill's, when it names one)
``-621053`` collection ``charge`` not within 0 < charge ≤ goodsValue + freight, or its currency ≠ the order's
``-621054`` list ``tradeMode`` does not go with the order's ``orderType`` (E 9610/1210, B 9710, W 9810)
``-621055`` order, collection or waybill still missing after ``match_wait`` seconds
``-621056`` refused at manual review (the operator's note follows)
``-625051`` a return line's ``gcode`` / ``gname`` / ``gmodel`` / ``unit`` ≠ the original line's
``-625052`` a returned qty exceeds what the list declared, less what earlier returns took
``-625053`` the return's ``ebpCode`` / ``ebcCode`` ≠ the original list's
========== =====================================================================================

Lists in a 701 (each refusal names the list): ``-701003`` unknown invtNo (or, for a time window, no
list in it), ``-701004`` not statisticsFlag B, not released (800/899), another seller or customs
office, or already in a live summary. A list is in a window when its ``appTime`` is (ours).
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from mock_customs.documents import Delivered, ReceivedDoc
from mock_customs.export_wire import OrderKey, ResultPart, SplitParts, export_return, order_key, summary_result_xml, waybill_key
from schemas.catalog import EXPORT, MessageType
from schemas.receipts import new_guid, return_time

if TYPE_CHECKING:
    from mock_customs.customs import Customs, Unsent

X_ORDER, X_COLLECTION, X_WAYBILL, X_ARRIVAL, X_DEPARTURE, X_LIST, X_CANCEL, X_CONSOLIDATION, X_REFUND, X_TALLY, \
    X_SUMMARY = (EXPORT[c] for c in ("303", "403", "505", "507", "509", "603", "605", "607", "213", "215", "701"))

ACCEPTED, CONCLUDED, RELEASED, CLOSED, REJECTED, REVIEW = "120", "399", "800", "899", "100", "300"

DUPLICATE = "-621004"
LINES = "-621051"
CONSIGNOR = "-621052"
CHARGE = "-621053"
TRADE_MODE = "-621054"
MISSING = "-621055"
REVIEW_REFUSED = "-621056"
RETURN_LINE = "-625051"
RETURN_QTY = "-625052"
RETURN_PARTIES = "-625053"
RETURN_NO_LINES = "-625006"
RETURN_UNKNOWN_LINE = "-625209"

TRADE_MODES = {"E": ("9610", "1210"), "B": ("9710",), "W": ("9810",)}
ZERO = Decimal(0)
Key = tuple[str, str]
GONE = ("rejected", "cancelled", "withdrawn")


def _code(mtype: MessageType, n: int) -> str:
    return f"-{int(mtype.code) * 1000 + n}"


def _dec(text: str | None) -> Decimal | None:
    try:
        return Decimal(text) if text not in (None, "") else None
    except InvalidOperation:
        return None


def _same(a: str | None, b: str | None) -> bool:
    da, db = _dec(a), _dec(b)
    return (da == db) if da is not None and db is not None else (a or "") == (b or "")


def _num(value: Decimal) -> str:
    return f"{value.normalize():f}"


@dataclass(eq=False)
class ExportList:
    """One export list customs holds, and where it is in its timeline."""

    key: Key  # (agentCode, copNo)
    doc: ReceivedDoc
    seq: int
    state: str = "entered"  # entered, review, concluded, released, closed, rejected, cancelled, withdrawn
    invt_no: str = ""
    arrived: bool = False
    bill: dict[str, str] = field(default_factory=dict)  # master bill: billNo, trafName, voyageNo (own or a 607's)
    returned: dict[str, Decimal] = field(default_factory=dict)  # qty returned so far, per gnum
    sum_no: str | None = None
    history: list[str] = field(default_factory=list)

    @property
    def head(self) -> dict[str, str]:
        return self.doc.head

    @property
    def live(self) -> bool:
        return self.state not in GONE

    def summary(self) -> dict[str, Any]:
        h = self.head
        return {"agentCode": self.key[0], "copNo": self.key[1], "guid": h.get("guid"), "invtNo": self.invt_no,
                "ebcCode": h.get("ebcCode"), "orderNo": h.get("orderNo"), "logisticsNo": h.get("logisticsNo"),
                "statisticsFlag": h.get("statisticsFlag"), "tradeMode": h.get("tradeMode"), "state": self.state,
                "history": list(self.history), "arrived": self.arrived, "billNo": self.bill.get("billNo"),
                "sumNo": self.sum_no, "returned": {g: _num(q) for g, q in self.returned.items()}}


@dataclass
class Declaration:
    """One customs declaration built from a summary (one or more 792s under one declSeqNo)."""

    decl_seq_no: str
    lists: list[ExportList]
    rows: list[dict[str, str]]  # invtNo, logisticsNo, gseqno, gnum, gcode
    entry_id: str | None = None
    dec_state: str = "1"


@dataclass
class Summary:
    sum_no: str
    parts: list[ReceivedDoc]
    lists: list[ExportList]
    declarations: list[Declaration] = field(default_factory=list)

    @property
    def head(self) -> dict[str, str]:
        return self.parts[0].head


class ExportDesk:
    """The export half of the customs stand-in; see the module docstring."""

    def __init__(self, customs: Customs) -> None:
        self.customs = customs
        self.ctx = customs.ctx
        self.orders: dict[OrderKey, ReceivedDoc] = {}
        self.collections: dict[OrderKey, ReceivedDoc] = {}
        self.waybills: dict[Key, ReceivedDoc] = {}
        self.lists: dict[Key, ExportList] = {}
        self.by_invt: dict[str, ExportList] = {}
        self.by_order: dict[OrderKey, ExportList] = {}  # the live list of each order
        self.by_waybill: dict[Key, ExportList] = {}  # the live list of each waybill
        self.waiting: dict[tuple[str, Any], set[ExportList]] = {}
        self.bills: dict[str, set[Key]] = {}  # master billNo -> waybills a 607 put under it
        self.parts = {m.code: SplitParts(m) for m in (X_ARRIVAL, X_DEPARTURE, X_CONSOLIDATION, X_SUMMARY)}
        self.returns: dict[Key, dict[str, Any]] = {}  # (agentCode, coElNo) -> return
        self.returns_by_waybill: dict[Key, Key] = {}
        self.tallies: list[dict[str, str]] = []
        self.cancellations: list[tuple[str, str]] = []  # (invtNo, status)
        self.summaries: dict[str, Summary] = {}
        self.counts = {"arrivals": 0, "departures": 0, "consolidations": 0, "refused": 0}
        self._seq = itertools.count(1)
        self._serial = random.randrange(10**8)

    # ------------------------------------------------------------------ dispatch
    def handle(self, msg: Delivered, out: Unsent) -> None:
        code = msg.code
        if code in self.parts:
            whole = []
            for doc in msg.docs:
                parts, refusal = self.parts[code].add(doc)
                if refusal:
                    self._answer(out, EXPORT[code], doc.head, REJECTED, refusal)
                elif parts:
                    whole.append(parts)
            step = {X_ARRIVAL.code: self._arrival, X_DEPARTURE.code: self._departure,
                    X_CONSOLIDATION.code: self._consolidation, X_SUMMARY.code: self._summary}[code]
            for parts in whole:
                step(parts, out)
            return
        handler: Callable[[ReceivedDoc, Unsent], None] | None = {
            X_ORDER.code: self._order, X_COLLECTION.code: self._collection, X_WAYBILL.code: self._waybill,
            X_LIST.code: self._list, X_CANCEL.code: self._cancel, X_REFUND.code: self._refund, X_TALLY.code: self._tally,
        }.get(code)
        if handler is None:
            return
        for doc in msg.docs:
            handler(doc, out)
        if code in (X_ORDER.code, X_COLLECTION.code, X_WAYBILL.code):
            for case in self._woken(msg):
                self._evaluate(case, out)

    # ------------------------------------------------------------------ receipts
    def _answer(self, out: Unsent, mtype: MessageType, head: dict[str, str], status: str, info: str, **values: str) -> None:
        if status == REJECTED:
            self.counts["refused"] += 1
        out.returns.setdefault(mtype.code, []).append(export_return(mtype, head, status, info, **values))

    def _list_receipt(self, out: Unsent, case: ExportList, status: str, info: str) -> None:
        case.history.append(status)
        self._answer(out, X_LIST, case.head, status, info, invtNo=case.invt_no)

    # ------------------------------------------------------------------ order, collection, waybill
    def _keep(self, store: dict, key: Any, doc: ReceivedDoc, mtype: MessageType, out: Unsent, what: str,
              stored: str) -> None:
        if doc.head.get("appType") == "3":
            if store.pop(key, None) is None:
                self._answer(out, mtype, doc.head, REJECTED, f"{mtype.missing_code} no {what} {'/'.join(key)} to delete")
            else:
                self._answer(out, mtype, doc.head, stored, f"{what} deleted (删除入库)")
            return
        store[key] = doc
        self._answer(out, mtype, doc.head, stored, f"{what} accepted into customs (海关入库)")

    def _order(self, doc: ReceivedDoc, out: Unsent) -> None:
        self._keep(self.orders, order_key(doc.head), doc, X_ORDER, out, "export order", ACCEPTED)

    def _collection(self, doc: ReceivedDoc, out: Unsent) -> None:
        self._keep(self.collections, order_key(doc.head), doc, X_COLLECTION, out, "collection (收款单)", ACCEPTED)

    def _waybill(self, doc: ReceivedDoc, out: Unsent) -> None:
        self._keep(self.waybills, waybill_key(doc.head), doc, X_WAYBILL, out, "export waybill", CONCLUDED)

    # ------------------------------------------------------------------ the list
    def _list(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        key = (h.get("agentCode", ""), h.get("copNo", ""))
        existing = self.lists.get(key)
        app_type = h.get("appType", "1")
        if app_type == "3":
            if existing is None or existing.state in ("cancelled", "withdrawn"):
                self._answer(out, X_LIST, h, REJECTED, f"{X_LIST.missing_code} no list for agentCode {key[0]}, copNo {key[1]}")
            elif existing.state in ("entered", "rejected"):
                self._void(existing, "withdrawn")
                self._answer(out, X_LIST, h, ACCEPTED, "list deleted (删除入库)", invtNo=existing.invt_no)
            else:
                self._answer(out, X_LIST, h, REJECTED, f"{X_LIST.state_code} the list is {existing.state}; "
                             "withdraw it by a cancellation (605)", invtNo=existing.invt_no)
            return
        if existing is not None and existing.live:
            if app_type == "1":
                self._answer(out, X_LIST, h, REJECTED, f"{DUPLICATE} a list for agentCode {key[0]}, copNo {key[1]} "
                             f"is already declared ({existing.state})")
                return
            if existing.state != "entered":
                self._answer(out, X_LIST, h, REJECTED, f"{X_LIST.state_code} the list is {existing.state} and can no "
                             "longer be changed; cancel it (605) and declare again", invtNo=existing.invt_no)
                return
            self._void(existing, "withdrawn")  # a change replaces the list still waiting for its documents
        elif app_type == "2":
            self._answer(out, X_LIST, h, REJECTED, f"{X_LIST.missing_code} no list for agentCode {key[0]}, copNo {key[1]} to change")
            return
        for index, what, k in ((self.by_order, "order", order_key(h)), (self.by_waybill, "waybill", waybill_key(h))):
            other = index.get(k)
            if other is not None and other.live:
                self._answer(out, X_LIST, h, REJECTED, f"{DUPLICATE} the {what} {'/'.join(k[-2:])} already has a live "
                             f"list {other.invt_no} ({other.state}); one list per {what}")
                return
        case = ExportList(key, doc, next(self._seq))
        case.invt_no = self._invt_no(h)
        if h.get("billNo"):
            case.bill = {f: h.get(f, "") for f in ("billNo", "trafName", "voyageNo")}
        self.lists[key] = case
        self.by_invt[case.invt_no] = case
        self.by_order[order_key(h)] = case
        self.by_waybill[waybill_key(h)] = case
        self._list_receipt(out, case, ACCEPTED, f"entered into customs (海关入库), invtNo {case.invt_no}")
        for wait_key in self._wait_keys(case):
            self.waiting.setdefault(wait_key, set()).add(case)
        self._evaluate(case, out)
        if self._waits(case):
            out.after(self.ctx.settings.match_wait, lambda o, c=case: self._give_up(c, o))

    def _invt_no(self, h: dict[str, str]) -> str:
        office = h.get("customsCode") or ""
        office = office if len(office) == 4 else "0000"
        year = (h.get("appTime") or "")[:4]
        year = year if year.isdigit() and len(year) == 4 else str(dt.date.today().year)
        while True:
            self._serial = (self._serial + 1) % 10**9
            invt_no = f"{office}{year}E{self._serial:09d}"
            if invt_no not in self.by_invt:
                return invt_no

    def _void(self, case: ExportList, state: str) -> None:
        case.state = state
        self._unwait(case)
        h = case.head
        for index, k in ((self.by_order, order_key(h)), (self.by_waybill, waybill_key(h))):
            if index.get(k) is case:
                del index[k]

    @staticmethod
    def _wait_keys(case: ExportList) -> tuple[tuple[str, Any], tuple[str, Any]]:
        return ("order", order_key(case.head)), ("waybill", waybill_key(case.head))

    def _unwait(self, case: ExportList) -> None:
        for wait_key in self._wait_keys(case):
            cases = self.waiting.get(wait_key)
            if cases is not None:
                cases.discard(case)
                if not cases:
                    del self.waiting[wait_key]

    def _woken(self, msg: Delivered) -> list[ExportList]:
        found: set[ExportList] = set()
        for doc in msg.docs:
            wait_key = ("waybill", waybill_key(doc.head)) if msg.code == X_WAYBILL.code else ("order", order_key(doc.head))
            found |= self.waiting.get(wait_key, set())
        return sorted(found, key=lambda c: c.seq)

    def _waits(self, case: ExportList) -> bool:
        """Whether the list is still waiting for its documents (entered, not yet matched)."""
        return case.state == "entered" and case in self.waiting.get(self._wait_keys(case)[0], ())

    def _linked(self, case: ExportList) -> tuple[ReceivedDoc | None, ReceivedDoc | None, ReceivedDoc | None, bool]:
        """(order, collection, waybill, whether a collection is needed: orderType E only, §8.2)."""
        order = self.orders.get(order_key(case.head))
        needed = order is None or order.head.get("orderType") == "E"
        return order, self.collections.get(order_key(case.head)), self.waybills.get(waybill_key(case.head)), needed

    def _give_up(self, case: ExportList, out: Unsent) -> None:
        if not self._waits(case):
            return
        order, collection, waybill, needed = self._linked(case)
        h = case.head
        missing = []
        if order is None:
            missing.append(f"order (ebpCode {h.get('ebpCode')}, ebcCode {h.get('ebcCode')}, orderNo {h.get('orderNo')})")
        elif needed and collection is None:
            missing.append(f"collection (收款单) for order {h.get('orderNo')} (orderType E)")
        if waybill is None:
            missing.append(f"waybill (logisticsCode {h.get('logisticsCode')}, logisticsNo {h.get('logisticsNo')})")
        self._reject(case, out, f"{MISSING} not received within {self.ctx.settings.match_wait:g} s: {'; '.join(missing)}")

    def _evaluate(self, case: ExportList, out: Unsent) -> None:
        if not self._waits(case):
            return
        order, collection, waybill, needed = self._linked(case)
        if order is None or waybill is None or (needed and collection is None):
            return
        self._unwait(case)
        problems = match_export(case.doc, order, collection if needed else None, waybill)
        if problems:
            self._reject(case, out, "; ".join(problems))
            return
        flagged = self.customs._dishonest(case.head)
        step = self.ctx.settings.step_delay
        if flagged:
            out.after(step, lambda o, c=case, f=flagged: self._hold(c, o, f))
        else:
            out.after(step, lambda o, c=case: self._conclude(c, o))

    def _hold(self, case: ExportList, out: Unsent, flagged: str) -> None:
        if case.state != "entered":
            return
        case.state = "review"
        self._list_receipt(out, case, REVIEW, f"manual review (人工审核): {flagged} {case.head.get(flagged)} is rated dishonest")

    def _conclude(self, case: ExportList, out: Unsent, note: str = "") -> None:
        if case.state not in ("entered", "review"):
            return
        case.state = "concluded"
        self._list_receipt(out, case, CONCLUDED, "concluded (海关审结)" + (f": {note}" if note else ""))
        if case.arrived:
            self._release(case, out)

    def _release(self, case: ExportList, out: Unsent) -> None:
        if case.state != "concluded":
            return
        case.state = "released"
        self._list_receipt(out, case, RELEASED, "released (放行): the parcel is on site")

    def _reject(self, case: ExportList, out: Unsent, info: str) -> None:
        self._void(case, "rejected")
        self._list_receipt(out, case, REJECTED, info)

    def review(self, invt_no: str, release: bool, note: str, out: Unsent) -> ExportList:
        case = self.by_invt[invt_no]
        if release:
            self._conclude(case, out, note)
        else:
            self._reject(case, out, f"{REVIEW_REFUSED} refused at manual review: {note or 'no reason given'}")
        return case

    # ------------------------------------------------------------------ 607, 507, 509
    def _list_of(self, logistics_code: str, logistics_no: str) -> ExportList | None:
        case = self.by_waybill.get((logistics_code, logistics_no))
        return case if case is not None and case.live else None

    def _answer_parts(self, out: Unsent, mtype: MessageType, parts: list[ReceivedDoc], problems: list[str],
                      ok_status: str, ok_info: str) -> None:
        for doc in parts:
            if problems:
                self._answer(out, mtype, doc.head, REJECTED, "; ".join(problems))
            else:
                self._answer(out, mtype, doc.head, ok_status, ok_info)

    def _consolidation(self, parts: list[ReceivedDoc], out: Unsent) -> None:
        self.counts["consolidations"] += 1
        head = parts[0].head
        code = head.get("logisticsCode", "")
        bill = {f: head.get(f, "") for f in ("billNo", "trafName", "voyageNo")}
        problems, found = [], []
        for doc in parts:
            for line in doc.lines:
                no = line.get("logisticsNo", "")
                case = self._list_of(code, no)
                if case is None:
                    problems.append(f"{_code(X_CONSOLIDATION, 3)} waybill {code}/{no} has no live export list")
                    continue
                if line.get("invtNo") and line["invtNo"] != case.invt_no:
                    problems.append(f"{_code(X_CONSOLIDATION, 1)} line gnum {line.get('gnum')} invtNo {line['invtNo']} ≠ "
                                    f"waybill {no}'s list invtNo {case.invt_no}")
                    continue
                if case.state == "closed":
                    problems.append(f"{_code(X_CONSOLIDATION, 4)} list {case.invt_no} of waybill {no} has already departed")
                    continue
                found.append(case)
        if not bill["billNo"]:
            problems.append(f"{_code(X_CONSOLIDATION, 1)} the master bill has no billNo")
        if not problems:
            for case in found:
                case.bill = dict(bill)
                self.bills.setdefault(bill["billNo"], set()).add(waybill_key(case.head))
        self._answer_parts(out, X_CONSOLIDATION, parts, problems, ACCEPTED,
                           f"{len(found)} waybills under master bill {bill['billNo']} (总分单入库)")

    def _parcels(self, mtype: MessageType, parts: list[ReceivedDoc], by_bill: bool) -> tuple[list[ExportList], list[str]]:
        """The lists of the waybills the parts name (or, ``by_bill`` and no lines, under the head's billNo)."""
        head = parts[0].head
        code = head.get("logisticsCode", "")
        keys = [(code, line.get("logisticsNo", "")) for doc in parts for line in doc.lines]
        problems: list[str] = []
        if not keys and by_bill:
            bill = head.get("billNo") or ""
            if not bill or bill not in self.bills:
                return [], [f"{_code(mtype, 3)} no lines, and no 607 put waybills under billNo {bill or '(none)'}"]
            keys = sorted(self.bills[bill])
        cases = []
        for k in keys:
            case = self._list_of(*k)
            if case is None:
                what = "unknown" if k not in self.waybills else "without a live export list"
                problems.append(f"{_code(mtype, 3)} waybill {k[0]}/{k[1]} is {what}")
            else:
                cases.append(case)
        return cases, problems

    def _arrival(self, parts: list[ReceivedDoc], out: Unsent) -> None:
        self.counts["arrivals"] += 1
        cases, problems = self._parcels(X_ARRIVAL, parts, by_bill=True)
        problems += [f"{_code(X_ARRIVAL, 4)} list {c.invt_no} of waybill {c.head.get('logisticsNo')} is {c.state}"
                     for c in cases if c.state == "closed"]
        self._answer_parts(out, X_ARRIVAL, parts, problems, CONCLUDED,
                           f"arrival of {len(cases)} parcels accepted (运抵审结)")
        if problems:
            return
        for case in cases:
            case.arrived = True
            self._release(case, out)

    def _departure(self, parts: list[ReceivedDoc], out: Unsent) -> None:
        self.counts["departures"] += 1
        cases, problems = self._parcels(X_DEPARTURE, parts, by_bill=False)
        for c in cases:
            if c.state != "released":
                problems.append(f"{_code(X_DEPARTURE, 4)} list {c.invt_no} of waybill {c.head.get('logisticsNo')} is "
                                f"{c.state}, not released")
            elif not c.bill.get("billNo"):
                problems.append(f"{_code(X_DEPARTURE, 1)} list {c.invt_no} of waybill {c.head.get('logisticsNo')} has no "
                                "master bill (its own billNo or a 607)")
        self._answer_parts(out, X_DEPARTURE, parts, problems, CONCLUDED, f"departure of {len(cases)} parcels (离境审结)")
        if problems:
            return
        for case in cases:
            case.state = "closed"
            self._list_receipt(out, case, CLOSED, f"closed (结关): left {parts[0].head.get('leaveTime', '')}")

    # ------------------------------------------------------------------ cancel, return, tally
    def _cancel(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        case = self.by_invt.get(h.get("invtNo") or "")
        if case is None:
            self.cancellations.append((h.get("invtNo", ""), REJECTED))
            self._answer(out, X_CANCEL, h, REJECTED, f"{X_CANCEL.missing_code} no list numbered {h.get('invtNo')}")
            return
        blocked = None
        if case.state not in ("entered", "review", "concluded", "released"):
            blocked = f"list {case.invt_no} is {case.state}"
        elif case.sum_no and case.sum_no in self.summaries:
            blocked = f"list {case.invt_no} is in summary {case.sum_no}"
        if blocked:
            self.cancellations.append((case.invt_no, REJECTED))
            self._answer(out, X_CANCEL, h, REJECTED, f"{X_CANCEL.state_code} {blocked}")
            return
        self._void(case, "cancelled")
        case.history.append("cancelled")
        self.cancellations.append((case.invt_no, CONCLUDED))
        self._answer(out, X_CANCEL, h, CONCLUDED, f"list {case.invt_no} cancelled (撤销审结)")

    def _refund(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        key = (h.get("agentCode", ""), h.get("coElNo", ""))
        case = self.by_invt.get(h.get("invtNo") or "")
        if key in self.returns:
            self._answer(out, X_REFUND, h, REJECTED, f"{X_REFUND.duplicate_code} a return {key[1]} is already declared")
            return
        if case is None:
            self._answer(out, X_REFUND, h, REJECTED, f"{X_REFUND.missing_code} no list numbered {h.get('invtNo')}")
            return
        if case.state not in ("released", "closed"):
            self._answer(out, X_REFUND, h, REJECTED, f"{X_REFUND.state_code} list {case.invt_no} is {case.state}; only "
                         "exported goods can be returned")
            return
        problems = [f"{RETURN_PARTIES} return {f} {h.get(f)} ≠ list {f} {case.head.get(f)}"
                    for f in ("ebpCode", "ebcCode") if (h.get(f) or "") != (case.head.get(f) or "")]
        more, qtys = check_export_return(doc.lines, case)
        problems += more
        if problems:
            self._answer(out, X_REFUND, h, REJECTED, "; ".join(problems))
            return
        for g, q in qtys.items():
            case.returned[g] = case.returned.get(g, ZERO) + q
        self.returns[key] = {"invtNo": case.invt_no, "coElNo": key[1], "state": "accepted",
                             "lines": {g: _num(q) for g, q in qtys.items()}, "head": dict(h)}
        self.returns_by_waybill[waybill_key(h)] = key
        left = ", ".join(f"gnum {g} {_num((_dec(line.get('qty')) or ZERO) - case.returned.get(line.get('gnum', ''), ZERO))}"
                         for line in case.doc.lines for g in [line.get("gnum", "")])
        self._answer(out, X_REFUND, h, ACCEPTED, f"return accepted (退货入库) against list {case.invt_no}; left: {left}")
        out.after(self.ctx.settings.step_delay, lambda o, k=key: self._refund_released(k, o))

    def _refund_released(self, key: Key, out: Unsent) -> None:
        ret = self.returns[key]
        ret["state"] = "released"
        self._answer(out, X_REFUND, ret["head"], RELEASED, f"return released (退货放行) against list {ret['invtNo']}")

    def _tally(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        key = self.returns_by_waybill.get(waybill_key(h))
        if key is None:
            self._answer(out, X_TALLY, h, REJECTED, f"{_code(X_TALLY, 3)} no return names waybill "
                         f"{h.get('logisticsCode')}/{h.get('logisticsNo')}")
            return
        ret = self.returns[key]
        if h.get("invtNo") and h["invtNo"] != ret["invtNo"]:
            self._answer(out, X_TALLY, h, REJECTED, f"{_code(X_TALLY, 1)} tally invtNo {h['invtNo']} ≠ the return's "
                         f"original list {ret['invtNo']}")
            return
        ret["tallied"] = True
        self.tallies.append({"coElNo": h.get("coElNo", ""), "return": key[1]})
        self._answer(out, X_TALLY, h, CONCLUDED, f"returned parcel tallied (理货审结) for return {key[1]}")

    # ------------------------------------------------------------------ summary 701 → 702, 792
    def _summary(self, parts: list[ReceivedDoc], out: Unsent) -> None:
        head = parts[0].head
        ebc, office = head.get("ebcCode", ""), head.get("customsCode", "")
        start, end = (head.get("startTime") or "")[:14], (head.get("endTime") or "")[:14]
        problems: list[str] = []
        chosen: list[ExportList] = []
        if start or end:
            chosen = [c for c in self.by_invt.values() if start <= (c.head.get("appTime") or "")[:14] <= (end or "99")
                      and c.head.get("ebcCode") == ebc and c.head.get("customsCode") == office
                      and c.head.get("statisticsFlag") == "B" and c.state in ("released", "closed") and not self._summed(c)]
            if not chosen:
                problems.append(f"{_code(X_SUMMARY, 3)} no released B list of ebcCode {ebc} at {office} in {start}–{end}")
        else:
            for doc in parts:
                for line in doc.lines:
                    invt = line.get("invtNo", "")
                    case = self.by_invt.get(invt)
                    if case is None:
                        problems.append(f"{_code(X_SUMMARY, 3)} no list numbered {invt}")
                        continue
                    why = self._unsummable(case, ebc, office)
                    if why:
                        problems.append(f"{_code(X_SUMMARY, 4)} list {invt} {why}")
                    elif case in chosen:
                        problems.append(f"{_code(X_SUMMARY, 1)} list {invt} is named twice")
                    else:
                        chosen.append(case)
            if not chosen and not problems:
                problems.append(f"{_code(X_SUMMARY, 1)} a summary without a time window names at least one list")
        if problems:
            self._answer_parts(out, X_SUMMARY, parts, problems, CONCLUDED, "")
            return
        sum_no = self._number(office, head.get("appTime"), "H")
        summary = Summary(sum_no, parts, chosen)
        self.summaries[sum_no] = summary
        for case in chosen:
            case.sum_no = sum_no
        for doc in parts:
            self._answer(out, X_SUMMARY, doc.head, CONCLUDED, f"summary accepted (汇总审结): {len(chosen)} lists, sumNo {sum_no}",
                         sumNo=sum_no)
        summary.declarations = self._declarations(summary)
        step = self.ctx.settings.step_delay
        out.after(step, lambda o, s=summary: self._results(s, o, entered=False))
        out.after(2 * step if step else 0, lambda o, s=summary: self._results(s, o, entered=True))

    def _summed(self, case: ExportList) -> bool:
        return bool(case.sum_no and case.sum_no in self.summaries)

    def _unsummable(self, case: ExportList, ebc: str, office: str) -> str | None:
        h = case.head
        if h.get("statisticsFlag") != "B":
            return f"is statisticsFlag {h.get('statisticsFlag')}, not B (simplified lists are not summarised)"
        if case.state not in ("released", "closed"):
            return f"is {case.state}, not released (800/899)"
        if h.get("ebcCode") != ebc:
            return f"ebcCode {h.get('ebcCode')} ≠ the summary's ebcCode {ebc}"
        if h.get("customsCode") != office:
            return f"customsCode {h.get('customsCode')} ≠ the summary's customsCode {office}"
        if self._summed(case):
            return f"is already in summary {case.sum_no}"
        return None

    def _number(self, office: str, when: str | None, mark: str) -> str:
        office = office if len(office) == 4 else "0000"
        year = (when or "")[:4] if (when or "")[:4].isdigit() else str(dt.date.today().year)
        self._serial = (self._serial + 1) % 10**9
        return f"{office}{year}{mark}{self._serial:09d}"

    def _declarations(self, summary: Summary) -> list[Declaration]:
        """The declarations a summary becomes: per seller (summaryFlag 1) or seller + ownerCode (2);
        items per line itemName (itemNameFlag 1) or per gcode (0)."""
        h = summary.head
        groups: dict[tuple[str, ...], list[ExportList]] = {}
        for case in summary.lists:
            key = (case.head.get("ebcCode", ""),) + ((case.head.get("ownerCode", ""),) if h.get("summaryFlag") == "2" else ())
            groups.setdefault(key, []).append(case)
        by_name = h.get("itemNameFlag") == "1"
        out = []
        for cases in groups.values():
            items: dict[tuple[str, str], int] = {}
            rows = []
            for case in cases:
                for line in case.doc.lines:
                    item = (line.get("gcode", ""), (line.get("itemName") or line.get("gname", "")) if by_name else "")
                    gseqno = items.setdefault(item, len(items) + 1)
                    rows.append({"invtNo": case.invt_no, "logisticsNo": case.head.get("logisticsNo", ""),
                                 "gseqno": str(gseqno), "gnum": line.get("gnum", ""), "gcode": line.get("gcode", "")})
            self._serial = (self._serial + 1) % 10**9
            seq_no = f"E{dt.date.today():%Y%m%d}{self._serial:09d}"
            out.append(Declaration(seq_no, cases, rows))
        return out

    def _results(self, summary: Summary, out: Unsent, *, entered: bool) -> None:
        h = summary.head
        office = h.get("customsCode", "")
        for decl in summary.declarations:
            gross = sum((_dec(c.head.get("grossWeight")) or ZERO for c in decl.lists), ZERO)
            net = sum((_dec(c.head.get("netWeight")) or ZERO for c in decl.lists), ZERO)
            head = {"customsCode": office, "sumNo": summary.sum_no, "opDate": return_time(), "declSeqNo": decl.decl_seq_no,
                    "decState": "1", "grossWeight": _num(gross), "netWeight": _num(net), "msgCount": "1", "msgSeqNo": "1",
                    **{f: h.get(f) or h.get(f.replace("Name", "Code"), "") for f in (
                        "agentCode", "agentName", "ebcCode", "ebcName", "declAgentCode", "declAgentName")}}
            if entered:
                decl.entry_id = self._number(office, summary.sum_no[4:8], "1")
                decl.dec_state = "10"
                head.update(decTmpNo=self._number(office, summary.sum_no[4:8], "T"),
                            decPreNo=self._number(office, summary.sum_no[4:8], "0"), entryId=decl.entry_id, decState="10")
                chunks: list[list[dict[str, str]]] = [[]]
            else:
                chunks = [decl.rows[i:i + 500] for i in range(0, len(decl.rows), 500)] or [[]]
            for seq, rows in enumerate(chunks, 1):
                part = ResultPart({**head, "guid": new_guid(), "msgCount": str(len(chunks)), "msgSeqNo": str(seq)}, rows)
                out.messages.append(summary_result_xml([part]))

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        by_state: dict[str, list[dict[str, Any]]] = {}
        for case in self.lists.values():
            by_state.setdefault(case.state, []).append(case.summary())
        return {
            "counts": {"orders": len(self.orders), "collections": len(self.collections), "waybills": len(self.waybills),
                       "lists": len(self.lists), "listsByState": {s: len(v) for s, v in by_state.items()},
                       "returns": len(self.returns), "tallies": len(self.tallies), "summaries": len(self.summaries),
                       "cancellations": len(self.cancellations), **self.counts},
            "lists": by_state,
            "masterBills": {bill: len(ws) for bill, ws in self.bills.items()},
            "splitWaiting": {code: p.waiting() for code, p in self.parts.items() if p.open},
            "summaries": [{"sumNo": s.sum_no, "lists": [c.invt_no for c in s.lists],
                           "declarations": [{"declSeqNo": d.decl_seq_no, "entryId": d.entry_id, "decState": d.dec_state,
                                             "lists": [c.invt_no for c in d.lists], "items": len({r["gseqno"] for r in d.rows})}
                                            for d in s.declarations]} for s in self.summaries.values()],
            "returns": [{k: v for k, v in r.items() if k != "head"} for r in self.returns.values()],
        }


# ---------------------------------------------------------------------- the rules themselves
def match_export(inventory: ReceivedDoc, order: ReceivedDoc, collection: ReceivedDoc | None,
                 waybill: ReceivedDoc) -> list[str]:
    """Every disagreement between an export list and its order, collection and waybill (§8.2, 8.3)."""
    i, o, w = inventory.head, order.head, waybill.head
    problems: list[str] = []
    if (i.get("ebcCode") or "") != (o.get("ebcCode") or ""):
        problems.append(f"{CONSIGNOR} list ebcCode {i.get('ebcCode')} ≠ order ebcCode {o.get('ebcCode')}")
    if w.get("ebcCode") and w["ebcCode"] != i.get("ebcCode"):
        problems.append(f"{CONSIGNOR} list ebcCode {i.get('ebcCode')} ≠ waybill ebcCode {w['ebcCode']}")
    order_type, trade_mode = o.get("orderType", ""), i.get("tradeMode", "")
    if trade_mode not in TRADE_MODES.get(order_type, ()):
        problems.append(f"{TRADE_MODE} list tradeMode {trade_mode} does not go with order orderType {order_type} "
                        f"(expects {'/'.join(TRADE_MODES.get(order_type, ('?',)))})")
    problems += _match_lines(inventory.lines, order.lines)
    if collection is not None:
        c = collection.head
        charge = _dec(c.get("charge"))
        ceiling = (_dec(o.get("goodsValue")) or ZERO) + (_dec(o.get("freight")) or ZERO)
        if charge is None or charge <= 0 or charge > ceiling:
            problems.append(f"{CHARGE} collection charge {c.get('charge')} is not within 0 < charge ≤ order goodsValue "
                            f"{o.get('goodsValue')} + freight {o.get('freight') or '0'} = {_num(ceiling)}")
        if (c.get("currency") or "") != (o.get("currency") or ""):
            problems.append(f"{CHARGE} collection currency {c.get('currency')} ≠ order currency {o.get('currency')}")
    return problems


def _match_lines(list_lines: list[dict[str, str]], order_lines: list[dict[str, str]]) -> list[str]:
    by_gnum = {line.get("gnum", ""): line for line in order_lines}
    seen: set[str] = set()
    problems: list[str] = []
    for line in list_lines:
        g = line.get("gnum", "")
        if g in seen:
            problems.append(f"{LINES} list gnum {g} appears twice")
            continue
        seen.add(g)
        ol = by_gnum.get(g)
        if ol is None:
            problems.append(f"{LINES} list gnum {g} has no order line")
            continue
        for f in ("qty", "unit", "price", "totalPrice", "currency"):
            if not _same(line.get(f), ol.get(f)):
                problems.append(f"{LINES} list gnum {g} {f} {line.get(f)} ≠ order {f} {ol.get(f)}")
        if line.get("itemName") and line["itemName"] != (ol.get("itemName") or ""):
            problems.append(f"{LINES} list gnum {g} itemName {line['itemName']} ≠ order itemName {ol.get('itemName')}")
    problems += [f"{LINES} order gnum {g} has no list line" for g in by_gnum if g not in seen]
    return problems


def check_export_return(lines: list[dict[str, str]], case: ExportList) -> tuple[list[str], dict[str, Decimal]]:
    """A return's lines against the original list (§8.3): same goods, no more than what is left."""
    by_gnum = {line.get("gnum", ""): line for line in case.doc.lines}
    problems: list[str] = []
    qtys: dict[str, Decimal] = {}
    if not lines:
        problems.append(f"{RETURN_NO_LINES} the return has no lines")
    for line in lines:
        g = line.get("gnum", "")
        original = by_gnum.get(g)
        if original is None:
            problems.append(f"{RETURN_UNKNOWN_LINE} return gnum {g} is not a line of list {case.invt_no}")
            continue
        for f in ("gcode", "gname", "gmodel", "unit"):
            if (line.get(f) or "") != (original.get(f) or ""):
                problems.append(f"{RETURN_LINE} return gnum {g} {f} {line.get(f)} ≠ list {f} {original.get(f)}")
        qty = _dec(line.get("qty"))
        declared = _dec(original.get("qty")) or ZERO
        before = case.returned.get(g, ZERO) + qtys.get(g, ZERO)
        if qty is None or qty <= 0:
            problems.append(f"{RETURN_QTY} return gnum {g} qty {line.get('qty')} is not a positive quantity")
        elif before + qty > declared:
            problems.append(f"{RETURN_QTY} return gnum {g} qty {line.get('qty')} > list qty {original.get('qty')}"
                            + (f" less {_num(before)} already returned" if before else ""))
        else:
            qtys[g] = qtys.get(g, ZERO) + qty
    return problems, qtys
