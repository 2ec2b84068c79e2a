"""The customs stand-in: takes in orders, payments and waybills, matches each declaration list
against them (三单对碰, CEB.md §2), keeps the retail limits (§4) and releases or refuses the list.
The export half (CEB.md §8: 303 … 701, and the CEB792 summary results customs issues) is handed to
``customs_export.ExportDesk``, whose docstring lists its statuses and codes.

What it answers, each as the filed message's own CEB receipt (schemas.receipts):

- order 311, payment 411, waybill 511, waybill status 513, arrival 711: ``120`` accepted into
  customs, per document (appType 2 replaces a document, appType 3 removes it).
- list 621: waits until its order (ebpCode, orderNo), payment (ebpCode, orderNo) and waybill
  (logisticsCode, logisticsNo) are all in, re-checking whenever a document arrives; then matches
  and checks the limits. A clean list gets ``120`` (with the ``invtNo`` customs assigns:
  customsCode + year + ``I`` + 9 digits), ``399`` and ``800`` ``step_delay`` apart. A list whose
  seller (ebcCode) or declaring agent (agentCode) is rated ``dishonest`` gets ``120`` then ``300``
  and waits for the operator (``POST /_admin/review``): ``399`` + ``800``, or ``100`` with the note.
- cancellation 623: reverses the list's charge to the buyer's annual account, ``399``.
- return 625: gives back Σ order-line price × returned qty (never more than was charged), ``399``.

The buyer's annual account (buyerIdNumber, calendar year of the list's declTime) is charged the
order's ``acturalPaid`` when a list is accepted (120) and given back by a refusal after that, a
cancellation or a return.

Error codes at the start of ``returnInfo``. Official (CEB.md §5 and schemas.catalog): ``-621004``
duplicate list, ``-621005`` over the per-transaction limit, ``-621018`` over the annual limit,
``-621011`` / ``-623003`` / ``-625018`` no such document, ``-621012`` / ``-623005`` / ``-625022``
the document's state forbids it, and each family's "missing" code for a deletion of an unknown
document (``-301009``, ``-401006``, ``-504014``, ``-505014``, ``-800001``). Ours (no official code
is given for these; each mismatch names the two fields and both values):

========== =====================================================================================
``-621041`` order ``acturalPaid`` ≠ payment ``amountPaid``
``-621042`` order ``consignee`` / ``consigneeTelephone`` / ``consigneeAddress`` ≠ the waybill's
``-621043`` list lines ≠ order lines (gnum sets, ``gname`` vs ``itemName``, ``qty``, ``price``)
``-621044`` list ``buyerIdNumber`` / ``buyerName`` ≠ the order's
``-621045`` payment ``payerIdNumber`` / ``payerName`` ≠ the order's buyer
``-621046`` keys disagree: list ``ebcCode`` ≠ order ``ebcCode``, waybill ``orderNo`` ≠ list ``orderNo``
``-621047`` order, payment or waybill still missing after ``match_wait`` seconds
``-621048`` refused at manual review (the operator's note follows)
``-625041`` a return line does not match the list line (unknown gnum, ``gcode``/``gname``/``unit``)
``-625042`` a returned qty exceeds what the list declared (less what was already returned)
========== =====================================================================================

ID numbers are masked in ``returnInfo`` (the window shows receipts to every filer of the flow).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from mock_customs.base import Context, Regulator
from mock_customs.customs_export import X_LIST, ExportDesk
from mock_customs.documents import Delivered, ReceivedDoc
from schemas.catalog import EXPORT, FILED, MessageType
from schemas.receipts import DocumentReturn, document_fields, receipt_xml

ORDER, PAYMENT, WAYBILL, STATUS, LIST, CANCEL, REFUND, ARRIVAL = (
    FILED[c] for c in ("311", "411", "511", "513", "621", "623", "625", "711"))

ACCEPTED, CONCLUDED, RELEASED, REJECTED, REVIEW = "120", "399", "800", "100", "300"

MISMATCH_AMOUNT = "-621041"
MISMATCH_CONSIGNEE = "-621042"
MISMATCH_LINES = "-621043"
MISMATCH_BUYER = "-621044"
MISMATCH_PAYER = "-621045"
MISMATCH_KEYS = "-621046"
MISSING_DOCUMENTS = "-621047"
REVIEW_REFUSED = "-621048"
OVER_TRANSACTION = "-621005"
OVER_ANNUAL = "-621018"
REFUND_LINE = "-625041"
REFUND_QTY = "-625042"

ZERO = Decimal(0)
CENT = Decimal("0.01")
Key = tuple[str, str]


def _dec(text: str | None) -> Decimal | None:
    try:
        return Decimal(text) if text not in (None, "") else None
    except InvalidOperation:
        return None


def _same_amount(a: str | None, b: str | None) -> bool:
    da, db = _dec(a), _dec(b)
    return (da == db) if da is not None and db is not None else (a or "") == (b or "")


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _mask(id_number: str | None) -> str:
    s = id_number or ""
    return s if len(s) < 8 else s[:4] + "*" * (len(s) - 8) + s[-4:]


def _year(*candidates: str | None) -> str:
    for c in candidates:
        if c and len(c) >= 4 and c[:4].isdigit():
            return c[:4]
    return str(dt.date.today().year)


@dataclass(eq=False)
class ListCase:
    """One declaration list customs holds, and where it is in its timeline."""

    key: Key  # (ebcCode, orderNo)
    doc: ReceivedDoc
    state: str = "waiting"  # waiting, accepted, review, concluded, released, rejected, cancelled, withdrawn
    invt_no: str | None = None
    year: str = ""
    buyer: str = ""
    charged: Decimal = ZERO  # what this list currently holds of the buyer's annual account
    price_by_gnum: dict[str, Decimal] = field(default_factory=dict)  # the order's line prices, at match
    returned: dict[str, Decimal] = field(default_factory=dict)  # qty returned so far, per gnum
    history: list[str] = field(default_factory=list)  # returnStatus sent, in order
    seq: int = 0  # arrival order among lists: lists woken by one delivery are decided in this order

    @property
    def head(self) -> dict[str, str]:
        return self.doc.head

    @property
    def pre_no(self) -> str | None:
        pre = self.head.get("preNo") or ""
        return pre if len(pre) == 18 else None

    def summary(self) -> dict[str, Any]:
        return {"ebcCode": self.key[0], "orderNo": self.key[1], "guid": self.head.get("guid"), "invtNo": self.invt_no,
                "state": self.state, "history": list(self.history), "charged": _money(self.charged)}


class Unsent:
    """What customs has decided but not yet sent: the receipts and timers gathered while deciding.
    Receipts are queued first, then the timers start, so a list's 120 always leaves before its 399
    however short the step delay."""

    def __init__(self) -> None:
        self.returns: dict[str, list[DocumentReturn]] = {}
        self.messages: list[str] = []  # customs' own messages (CEB792), sent after the receipts
        self.timers: list[tuple[float, Callable[[Unsent], None]]] = []

    def add(self, mtype: MessageType, fields: dict[str, str], status: str, info: str) -> None:
        self.returns.setdefault(mtype.code, []).append(DocumentReturn(fields, status, info))

    def after(self, seconds: float, step: Callable[[Unsent], None]) -> None:
        self.timers.append((seconds, step))


class ReviewDecision(BaseModel):
    ebcCode: str = Field(min_length=1, max_length=18)
    orderNo: str = Field(min_length=1, max_length=60)
    release: bool
    note: str = Field("", max_length=500)


class ExportReviewDecision(BaseModel):
    invtNo: str = Field(min_length=1, max_length=20)
    release: bool
    note: str = Field("", max_length=500)


class Customs(Regulator):
    name = "customs"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.orders: dict[Key, ReceivedDoc] = {}
        self.payments: dict[Key, ReceivedDoc] = {}  # by the order they pay: (ebpCode, orderNo)
        self.payment_links: dict[Key, Key] = {}  # (payCode, payTransactionId) -> (ebpCode, orderNo)
        self.waybills: dict[Key, ReceivedDoc] = {}
        self.statuses: dict[Key, list[ReceivedDoc]] = {}
        self.arrivals: dict[Key, ReceivedDoc] = {}  # (operatorCode, billNo)
        self.lists: dict[Key, ListCase] = {}
        self.by_invt: dict[str, ListCase] = {}
        self.cancellations: list[tuple[ReceivedDoc, str]] = []
        self.refunds: list[tuple[ReceivedDoc, str]] = []
        self.credit: dict[str, str] = {}  # enterprise code (customs code or USCC) -> rating
        self.accounts: dict[str, dict[str, Decimal]] = {}  # buyerIdNumber -> year -> charged
        self._serial = random.randrange(10**8)
        self._rkd_serial = random.randrange(10**8)
        # Lists waiting for documents, by what they wait on: ("order", (ebpCode, orderNo)) — the order
        # and the payment — and ("waybill", (logisticsCode, logisticsNo)). A delivery re-checks only
        # the lists its documents can complete, not every list customs holds.
        self.waiting: dict[tuple[str, Key], set[ListCase]] = {}
        self._list_seq = itertools.count(1)
        self._reading: dict[str, Awaitable[None]] = {}  # registry reads in flight, by enterprise code
        self.exports = ExportDesk(self)  # the export half (customs_export)

    # ------------------------------------------------------------------ the framework's calls
    async def prepare(self, msg: Delivered) -> None:
        if msg.code in (LIST.code, X_LIST.code):
            await self._learn_credit(msg.docs)

    async def on_message(self, msg: Delivered) -> None:
        out = Unsent()
        if msg.code in EXPORT:
            self.exports.handle(msg, out)
            await self._flush(out)
            return
        handler = {
            ORDER.code: self._order, PAYMENT.code: self._payment, WAYBILL.code: self._waybill,
            STATUS.code: self._status, LIST.code: self._list, CANCEL.code: self._cancel,
            REFUND.code: self._refund, ARRIVAL.code: self._arrival,
        }.get(msg.code)
        if handler is None:
            return
        for doc in msg.docs:
            handler(doc, out)
        if msg.code in (ORDER.code, PAYMENT.code, WAYBILL.code):
            for case in self._woken(msg):
                self._evaluate(case, out)
                self._settle(case)
        await self._flush(out)

    async def on_registration(self, view: dict) -> None:
        self._remember_rating(view)

    def router(self) -> APIRouter:
        router = APIRouter(prefix="/_admin", dependencies=[Depends(self.ctx.require_operator)])

        @router.post("/review", summary="Decide a list held for manual review (operator)")
        async def review(decision: ReviewDecision) -> dict:
            case = self.lists.get((decision.ebcCode, decision.orderNo))
            if case is None:
                raise HTTPException(404, f"no list for ebcCode {decision.ebcCode}, orderNo {decision.orderNo}")
            if case.state != "review":
                raise HTTPException(409, f"the list is {case.state}, not held for review")
            out = Unsent()
            if decision.release:
                self._conclude(case, out, note=decision.note)
            else:
                self._reject(case, out, f"{REVIEW_REFUSED} refused at manual review: {decision.note or 'no reason given'}")
            await self._flush(out)
            return case.summary()

        @router.post("/export/review", summary="Decide an export list held for manual review (operator)")
        async def export_review(decision: ExportReviewDecision) -> dict:
            case = self.exports.by_invt.get(decision.invtNo)
            if case is None:
                raise HTTPException(404, f"no export list numbered {decision.invtNo}")
            if case.state != "review":
                raise HTTPException(409, f"the list is {case.state}, not held for review")
            out = Unsent()
            self.exports.review(decision.invtNo, decision.release, decision.note, out)
            await self._flush(out)
            return case.summary()

        return router

    def state(self) -> dict:
        by_state: dict[str, list[dict[str, Any]]] = {}
        for case in self.lists.values():
            by_state.setdefault(case.state, []).append(case.summary())
        return {
            "counts": {
                "orders": len(self.orders), "payments": len(self.payments), "waybills": len(self.waybills),
                "waybillStatuses": sum(len(v) for v in self.statuses.values()), "arrivals": len(self.arrivals),
                "lists": len(self.lists), "cancellations": len(self.cancellations), "returns": len(self.refunds),
                "listsByState": {s: len(v) for s, v in by_state.items()},
            },
            "accounts": {buyer: {y: _money(v) for y, v in years.items()} for buyer, years in self.accounts.items()},
            "lists": by_state,
            "credit": dict(self.credit),
            "export": self.exports.state(),
        }

    # ------------------------------------------------------------------ credit ratings
    def _remember_rating(self, view: dict) -> None:
        rating = view.get("creditRating")
        for code in {view.get("code"), view.get("customsCode"), view.get("uscc")}:
            if isinstance(code, str) and code:
                if rating:
                    self.credit[code] = str(rating)
                else:
                    self.credit.setdefault(code, "general")

    async def _learn_credit(self, docs: list[ReceivedDoc]) -> None:
        """Ask the window's registry about firms customs has not heard of, before deciding anything,
        so that the decisions themselves never wait on the network. Runs before the delivery lock
        (``prepare``): reads for different deliveries overlap, and one read of a code serves every
        delivery waiting for it."""
        wanted = {d.head.get(f) for d in docs for f in ("ebcCode", "agentCode")} - {None, ""}
        unknown = sorted(c for c in wanted if c not in self.credit)
        if unknown:
            await asyncio.gather(*(self._read_rating(code) for code in unknown))

    def _read_rating(self, code: str) -> Awaitable[None]:
        task = self._reading.get(code)
        if task is None:
            task = self.ctx.spawn(self._ask_registry(code))
            self._reading[code] = task
            task.add_done_callback(lambda _t, c=code: self._reading.pop(c, None))
        return asyncio.shield(task)  # a delivery that goes away does not cancel the others' read

    async def _ask_registry(self, code: str) -> None:
        if code in self.credit:
            return
        try:
            r = await self.ctx.gateway_get(f"/v1/registry/enterprises/{code}")
        except httpx.HTTPError as exc:
            self.ctx.log.warning("registry read of %s failed (%s); treated as general", code, exc)
            return
        if r.status_code == 200:
            view = r.json()
            self._remember_rating({**view, "code": code} if isinstance(view, dict) else {"code": code})
        elif r.status_code == 404:
            self.credit[code] = "general"
        else:
            self.ctx.log.warning("registry read of %s answered %s; treated as general", code, r.status_code)

    def _dishonest(self, head: dict[str, str]) -> str | None:
        for f in ("ebcCode", "agentCode"):
            if self.credit.get(head.get(f) or "") == "dishonest":
                return f
        return None

    # ------------------------------------------------------------------ receipts
    async def _flush(self, out: Unsent) -> None:
        for code, returns in out.returns.items():
            for i in range(0, len(returns), 100):
                await self.ctx.send_receipt(receipt_xml(FILED[code], returns[i:i + 100]))
        for message in out.messages:
            await self.ctx.send_receipt(message)
        # Steps due together share one timer, and so one receipt per type when they fire (the lists of a
        # delivery conclude in one CEB622, not one each); steps of different deliveries that fall due at
        # once go out as separate receipts, which the sender merges when it is busy.
        due: dict[float, list[Callable[[Unsent], None]]] = {}
        for seconds, step in out.timers:
            due.setdefault(seconds, []).append(step)
        for seconds, steps in due.items():
            self.ctx.later(seconds, self._stepper(steps))

    def _stepper(self, steps: list[Callable[[Unsent], None]]) -> Callable[[], Any]:
        async def run() -> None:
            out = Unsent()
            for step in steps:
                step(out)
            await self._flush(out)
        return run

    def _answer(self, out: Unsent, mtype: MessageType, head: dict[str, str], status: str, info: str,
                pre_no: str | None = None) -> None:
        out.add(mtype, document_fields(mtype, head, pre_no), status, info)

    def _list_receipt(self, out: Unsent, case: ListCase, status: str, info: str) -> None:
        case.history.append(status)
        head = {**case.head, "invtNo": case.invt_no or ""}
        self._answer(out, LIST, head, status, info, case.pre_no)

    # ------------------------------------------------------------------ order, payment, waybill, …
    def _keep(self, store: dict[Key, ReceivedDoc], key: Key, doc: ReceivedDoc, mtype: MessageType, out: Unsent,
              what: str) -> None:
        """appType 1/2 stores (a change replaces), 3 removes; each answered on its own."""
        if doc.head.get("appType") == "3":
            if store.pop(key, None) is None:
                self._answer(out, mtype, doc.head, REJECTED, f"{mtype.missing_code} no {what} {'/'.join(key)} to delete")
                return
            self._answer(out, mtype, doc.head, ACCEPTED, f"{what} deleted (删除入库)")
            return
        store[key] = doc
        self._answer(out, mtype, doc.head, ACCEPTED, f"{what} accepted into customs (海关入库)")

    def _order(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        self._keep(self.orders, (h.get("ebpCode", ""), h.get("orderNo", "")), doc, ORDER, out, "order")

    def _payment(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        own = (h.get("payCode", ""), h.get("payTransactionId", ""))
        link = self.payment_links.get(own)
        if h.get("appType") == "3":
            if link is None or self.payments.pop(link, None) is None:
                self._answer(out, PAYMENT, h, REJECTED, f"{PAYMENT.missing_code} no payment {'/'.join(own)} to delete")
                return
            del self.payment_links[own]
            self._answer(out, PAYMENT, h, ACCEPTED, "payment deleted (删除入库)")
            return
        new_link = (h.get("ebpCode", ""), h.get("orderNo", ""))
        if link is not None and link != new_link:  # a change that moved the payment to another order
            self.payments.pop(link, None)
        self.payment_links[own] = new_link
        self.payments[new_link] = doc
        self._answer(out, PAYMENT, h, ACCEPTED, "payment accepted into customs (海关入库)")

    def _waybill(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        self._keep(self.waybills, (h.get("logisticsCode", ""), h.get("logisticsNo", "")), doc, WAYBILL, out, "waybill")

    def _status(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        self.statuses.setdefault((h.get("logisticsCode", ""), h.get("logisticsNo", "")), []).append(doc)
        self._answer(out, STATUS, h, ACCEPTED, "waybill status accepted into customs (海关入库)")

    def _arrival(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        key = (h.get("operatorCode", ""), h.get("billNo", ""))
        if h.get("appType") == "3":
            if self.arrivals.pop(key, None) is None:
                self._answer(out, ARRIVAL, h, REJECTED, f"{ARRIVAL.missing_code} no arrival {'/'.join(key)} to delete")
            else:
                self._answer(out, ARRIVAL, h, ACCEPTED, "arrival deleted (删除入库)")
            return
        self.arrivals[key] = doc
        rkd = h.get("rkdNo") or self._rkd_no(h)
        self._answer(out, ARRIVAL, {**h, "rkdNo": rkd}, ACCEPTED,
                     f"arrival of {len(doc.lines)} waybills accepted into customs (海关入库), rkdNo {rkd}")

    def _rkd_no(self, h: dict[str, str]) -> str:
        self._rkd_serial = (self._rkd_serial + 1) % 10**9
        office = (h.get("customsCode") or "0000")[:4].ljust(4, "0")
        return f"{office}{_year(h.get('appTime'))}R{self._rkd_serial:09d}"

    # ------------------------------------------------------------------ declaration lists
    def _list(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        key = (h.get("ebcCode", ""), h.get("orderNo", ""))
        existing = self.lists.get(key)
        app_type = h.get("appType", "1")
        pre = h.get("preNo") if len(h.get("preNo") or "") == 18 else None
        open_states = ("waiting", "rejected")
        gone_states = ("rejected", "cancelled", "withdrawn")
        if app_type == "3":
            if existing is None or existing.state in ("cancelled", "withdrawn"):
                self._answer(out, LIST, h, REJECTED, f"{LIST.missing_code} no list for ebcCode {key[0]}, orderNo {key[1]}", pre)
            elif existing.state in open_states:
                existing.state = "withdrawn"
                self._answer(out, LIST, h, ACCEPTED, "list deleted (删除入库)", pre)
            else:
                self._answer(out, LIST, h, REJECTED, f"{LIST.state_code} the list is {existing.state}; "
                             "a list customs accepted is withdrawn by a cancellation (623)", pre)
            return
        if existing is not None:
            if app_type == "1" and existing.state not in gone_states:
                self._answer(out, LIST, h, REJECTED, f"{LIST.duplicate_code} a list for ebcCode {key[0]}, "
                             f"orderNo {key[1]} is already declared ({existing.state})", pre)
                return
            if app_type == "2" and existing.state not in (*open_states, "withdrawn", "cancelled"):
                self._answer(out, LIST, h, REJECTED, f"{LIST.state_code} the list is {existing.state} and can no "
                             "longer be changed; cancel it (623) and declare again", pre)
                return
        case = ListCase(key, doc, seq=next(self._list_seq))
        self.lists[key] = case
        self._evaluate(case, out)
        if case.state == "waiting":
            for wait_key in self._wait_keys(case):
                self.waiting.setdefault(wait_key, set()).add(case)
            out.after(self.ctx.settings.match_wait, lambda o, c=case: self._give_up(c, o))

    @staticmethod
    def _wait_keys(case: ListCase) -> tuple[tuple[str, Key], tuple[str, Key]]:
        h = case.head
        return ("order", (h.get("ebpCode", ""), h.get("orderNo", ""))), \
            ("waybill", (h.get("logisticsCode", ""), h.get("logisticsNo", "")))

    def _woken(self, msg: Delivered) -> list[ListCase]:
        """The waiting lists that this order, payment or waybill message can complete, oldest first
        (an order and a payment are stored under the order's key, a waybill under its own)."""
        kind, fields = ("waybill", ("logisticsCode", "logisticsNo")) if msg.code == WAYBILL.code \
            else ("order", ("ebpCode", "orderNo"))
        found: set[ListCase] = set()
        for doc in msg.docs:
            found |= self.waiting.get((kind, (doc.head.get(fields[0], ""), doc.head.get(fields[1], ""))), set())
        return sorted(found, key=lambda c: c.seq)

    def _settle(self, case: ListCase) -> None:
        """Take a list out of the waiting index once it no longer waits (decided, withdrawn, replaced)."""
        if case.state == "waiting" and self.lists.get(case.key) is case:
            return
        for wait_key in self._wait_keys(case):
            cases = self.waiting.get(wait_key)
            if cases is not None:
                cases.discard(case)
                if not cases:
                    del self.waiting[wait_key]

    def _linked(self, case: ListCase) -> tuple[ReceivedDoc | None, ReceivedDoc | None, ReceivedDoc | None]:
        h = case.head
        order_key = (h.get("ebpCode", ""), h.get("orderNo", ""))
        waybill_key = (h.get("logisticsCode", ""), h.get("logisticsNo", ""))
        return self.orders.get(order_key), self.payments.get(order_key), self.waybills.get(waybill_key)

    def _give_up(self, case: ListCase, out: Unsent) -> None:
        if self.lists.get(case.key) is not case or case.state != "waiting":
            self._settle(case)
            return
        order, payment, waybill = self._linked(case)
        h = case.head
        missing = []
        if order is None:
            missing.append(f"order (ebpCode {h.get('ebpCode')}, orderNo {h.get('orderNo')})")
        if payment is None:
            missing.append(f"payment (ebpCode {h.get('ebpCode')}, orderNo {h.get('orderNo')})")
        if waybill is None:
            missing.append(f"waybill (logisticsCode {h.get('logisticsCode')}, logisticsNo {h.get('logisticsNo')})")
        wait = self.ctx.settings.match_wait
        self._reject(case, out, f"{MISSING_DOCUMENTS} not received within {wait:g} s: {'; '.join(missing)}")
        self._settle(case)

    def _evaluate(self, case: ListCase, out: Unsent) -> None:
        """Match a waiting list once its three documents are in, then check the limits and accept."""
        if case.state != "waiting" or self.lists.get(case.key) is not case:
            return
        order, payment, waybill = self._linked(case)
        if order is None or payment is None or waybill is None:
            return
        problems = match(case.doc, order, payment, waybill)
        if problems:
            self._reject(case, out, "; ".join(problems))
            return
        s, h = self.ctx.settings, case.head
        paid = _dec(order.head.get("acturalPaid")) or ZERO
        if paid > s.per_transaction_limit:
            self._reject(case, out, f"{OVER_TRANSACTION} order acturalPaid {_money(paid)} exceeds the per-transaction "
                         f"limit {_money(s.per_transaction_limit)}")
            return
        case.buyer = h.get("buyerIdNumber") or order.head.get("buyerIdNumber", "")
        case.year = _year(h.get("declTime"), order.head.get("appTime"), h.get("appTime"))
        account = self.accounts.setdefault(case.buyer, {})
        used = account.get(case.year, ZERO)
        if used + paid > s.annual_limit:
            self._reject(case, out, f"{OVER_ANNUAL} buyer {_mask(case.buyer)} has bought {_money(used)} in {case.year}; "
                         f"with this order's acturalPaid {_money(paid)} that is {_money(used + paid)}, over the annual "
                         f"limit {_money(s.annual_limit)}")
            return
        account[case.year] = used + paid
        case.charged = paid
        case.price_by_gnum = {line.get("gnum", ""): _dec(line.get("price")) or ZERO for line in order.lines}
        case.invt_no = self._invt_no(case)
        self.by_invt[case.invt_no] = case
        case.state = "accepted"
        self._list_receipt(out, case, ACCEPTED, f"accepted into customs (海关入库), invtNo {case.invt_no}")
        flagged = self._dishonest(h)
        if flagged:
            out.after(s.step_delay, lambda o, c=case, f=flagged: self._hold(c, o, f))
        else:
            out.after(s.step_delay, lambda o, c=case: self._conclude(c, o))

    def _invt_no(self, case: ListCase) -> str:
        office = case.head.get("customsCode") or ""
        office = office if len(office) == 4 else "0000"
        while True:
            self._serial = (self._serial + 1) % 10**9
            invt_no = f"{office}{case.year}I{self._serial:09d}"
            if invt_no not in self.by_invt:
                return invt_no

    def _hold(self, case: ListCase, out: Unsent, flagged: str) -> None:
        if case.state != "accepted":
            return
        case.state = "review"
        code = case.head.get(flagged)
        self._list_receipt(out, case, REVIEW, f"manual review (人工审核): {flagged} {code} is rated dishonest")

    def _conclude(self, case: ListCase, out: Unsent, note: str = "") -> None:
        if case.state not in ("accepted", "review"):
            return
        case.state = "concluded"
        self._list_receipt(out, case, CONCLUDED, "concluded (海关审结)" + (f": {note}" if note else ""))
        out.after(self.ctx.settings.step_delay, lambda o, c=case: self._release(c, o))

    def _release(self, case: ListCase, out: Unsent) -> None:
        if case.state != "concluded":
            return
        case.state = "released"
        self._list_receipt(out, case, RELEASED, "released (放行)")

    def _uncharge(self, case: ListCase, amount: Decimal) -> Decimal:
        amount = min(amount, case.charged)
        if amount > 0:
            account = self.accounts.setdefault(case.buyer, {})
            account[case.year] = account.get(case.year, ZERO) - amount
            case.charged -= amount
        return amount

    def _reject(self, case: ListCase, out: Unsent, info: str) -> None:
        self._uncharge(case, case.charged)
        case.state = "rejected"
        self._list_receipt(out, case, REJECTED, info)

    # ------------------------------------------------------------------ cancellations and returns
    def _case_for(self, h: dict[str, str]) -> ListCase | None:
        case = self.by_invt.get(h.get("invtNo") or "")
        return case if case is not None and case.head.get("ebcCode") == h.get("ebcCode") else None

    def _cancel(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        case = self._case_for(h)
        if case is None:
            self.cancellations.append((doc, REJECTED))
            self._answer(out, CANCEL, h, REJECTED,
                         f"{CANCEL.missing_code} no list numbered {h.get('invtNo')} for ebcCode {h.get('ebcCode')}")
            return
        if case.state not in ("accepted", "review", "concluded", "released"):
            self.cancellations.append((doc, REJECTED))
            self._answer(out, CANCEL, h, REJECTED, f"{CANCEL.state_code} list {case.invt_no} is {case.state}",
                         case.pre_no)
            return
        given = self._uncharge(case, case.charged)
        case.state = "cancelled"
        self.cancellations.append((doc, CONCLUDED))
        self._answer(out, CANCEL, h, CONCLUDED, f"list {case.invt_no} cancelled (撤销审结); CNY {_money(given)} "
                     f"given back to the buyer's {case.year} account", case.pre_no)

    def _refund(self, doc: ReceivedDoc, out: Unsent) -> None:
        h = doc.head
        case = self._case_for(h)
        if case is None:
            self.refunds.append((doc, REJECTED))
            self._answer(out, REFUND, h, REJECTED,
                         f"{REFUND.missing_code} no list numbered {h.get('invtNo')} for ebcCode {h.get('ebcCode')}")
            return
        if case.state != "released":
            self.refunds.append((doc, REJECTED))
            self._answer(out, REFUND, h, REJECTED, f"{REFUND.state_code} list {case.invt_no} is {case.state}; only "
                         "released goods can be returned", case.pre_no)
            return
        problems, qtys = check_return(doc.lines, case)
        if problems:
            self.refunds.append((doc, REJECTED))
            self._answer(out, REFUND, h, REJECTED, "; ".join(problems), case.pre_no)
            return
        value = sum((case.price_by_gnum.get(g, ZERO) * q for g, q in qtys.items()), ZERO)
        for g, q in qtys.items():
            case.returned[g] = case.returned.get(g, ZERO) + q
        given = self._uncharge(case, value)
        self.refunds.append((doc, CONCLUDED))
        self._answer(out, REFUND, h, CONCLUDED, f"return accepted (退货审结); CNY {_money(given)} given back to the "
                     f"buyer's {case.year} account", case.pre_no)


# ---------------------------------------------------------------------- the rules themselves
def match(inventory: ReceivedDoc, order: ReceivedDoc, payment: ReceivedDoc, waybill: ReceivedDoc) -> list[str]:
    """Every disagreement between a list and its order, payment and waybill (CEB.md §2), each with its code."""
    i, o, p, w = inventory.head, order.head, payment.head, waybill.head
    problems: list[str] = []
    if not _same_amount(o.get("acturalPaid"), p.get("amountPaid")):
        problems.append(f"{MISMATCH_AMOUNT} order acturalPaid {o.get('acturalPaid')} ≠ payment amountPaid {p.get('amountPaid')}")
    for f in ("consignee", "consigneeTelephone", "consigneeAddress"):
        if (o.get(f) or "") != (w.get(f) or ""):
            problems.append(f"{MISMATCH_CONSIGNEE} order {f} {o.get(f)} ≠ waybill {f} {w.get(f)}")
    problems += _match_lines(inventory.lines, order.lines)
    if (i.get("buyerIdNumber") or "") != (o.get("buyerIdNumber") or ""):
        problems.append(f"{MISMATCH_BUYER} list buyerIdNumber {_mask(i.get('buyerIdNumber'))} ≠ order buyerIdNumber "
                        f"{_mask(o.get('buyerIdNumber'))}")
    if (i.get("buyerName") or "") != (o.get("buyerName") or ""):
        problems.append(f"{MISMATCH_BUYER} list buyerName {i.get('buyerName')} ≠ order buyerName {o.get('buyerName')}")
    if (p.get("payerIdNumber") or "") != (o.get("buyerIdNumber") or ""):
        problems.append(f"{MISMATCH_PAYER} payment payerIdNumber {_mask(p.get('payerIdNumber'))} ≠ order buyerIdNumber "
                        f"{_mask(o.get('buyerIdNumber'))}")
    if (p.get("payerName") or "") != (o.get("buyerName") or ""):
        problems.append(f"{MISMATCH_PAYER} payment payerName {p.get('payerName')} ≠ order buyerName {o.get('buyerName')}")
    if (i.get("ebcCode") or "") != (o.get("ebcCode") or ""):
        problems.append(f"{MISMATCH_KEYS} list ebcCode {i.get('ebcCode')} ≠ order ebcCode {o.get('ebcCode')}")
    if (w.get("orderNo") or "") != (i.get("orderNo") or ""):
        problems.append(f"{MISMATCH_KEYS} waybill orderNo {w.get('orderNo')} ≠ list orderNo {i.get('orderNo')}")
    return problems


def _match_lines(list_lines: list[dict[str, str]], order_lines: list[dict[str, str]]) -> list[str]:
    by_gnum = {line.get("gnum", ""): line for line in order_lines}
    seen: set[str] = set()
    problems: list[str] = []
    for line in list_lines:
        g = line.get("gnum", "")
        if g in seen:
            problems.append(f"{MISMATCH_LINES} list gnum {g} appears twice")
            continue
        seen.add(g)
        ol = by_gnum.get(g)
        if ol is None:
            problems.append(f"{MISMATCH_LINES} list gnum {g} has no order line")
            continue
        if (line.get("gname") or "") != (ol.get("itemName") or ""):
            problems.append(f"{MISMATCH_LINES} list gnum {g} gname {line.get('gname')} ≠ order itemName {ol.get('itemName')}")
        for f in ("qty", "price"):
            if not _same_amount(line.get(f), ol.get(f)):
                problems.append(f"{MISMATCH_LINES} list gnum {g} {f} {line.get(f)} ≠ order {f} {ol.get(f)}")
    for g in by_gnum:
        if g not in seen:
            problems.append(f"{MISMATCH_LINES} order gnum {g} has no list line")
    return problems


def check_return(lines: list[dict[str, str]], case: ListCase) -> tuple[list[str], dict[str, Decimal]]:
    """A return's lines against the released list (CEB.md §2): same goods, no more than was declared."""
    by_gnum = {line.get("gnum", ""): line for line in case.doc.lines}
    problems: list[str] = []
    qtys: dict[str, Decimal] = {}
    if not lines:
        problems.append(f"{REFUND_LINE} the return has no lines")
    for line in lines:
        g = line.get("gnum", "")
        ll = by_gnum.get(g)
        if ll is None:
            problems.append(f"{REFUND_LINE} return gnum {g} is not a line of list {case.invt_no}")
            continue
        for f in ("gcode", "gname", "unit"):
            if line.get(f) and line.get(f) != ll.get(f):
                problems.append(f"{REFUND_LINE} return gnum {g} {f} {line.get(f)} ≠ list {f} {ll.get(f)}")
        qty = _dec(line.get("qty"))
        declared = _dec(ll.get("qty")) or ZERO
        before = case.returned.get(g, ZERO) + qtys.get(g, ZERO)
        if qty is None or qty <= 0:
            problems.append(f"{REFUND_QTY} return gnum {g} qty {line.get('qty')} is not a positive quantity")
        elif before + qty > declared:
            problems.append(f"{REFUND_QTY} return gnum {g} qty {line.get('qty')} > list qty {ll.get('qty')}"
                            + (f" less {before.normalize():f} already returned" if before else ""))
        else:
            qtys[g] = qtys.get(g, ZERO) + qty
    return problems, qtys
