"""The foreign-exchange stand-in (外汇): records cross-border payments against each payer's annual quota.

Every payment (411) is a purchase of foreign exchange by the payer (``payerIdNumber``). The
stand-in keeps, per payer and calendar year (of ``payTime``, else ``appTime``), the total in USD
(``amountPaid`` CNY ÷ ``fx_rate``, rounded to cents half up) and compares it with the individual
annual quota ``fx_quota_usd`` (50,000 USD by default).

Each payment document is answered with a CEB412 ``PaymentReturn``. Decision (ours; the standard has
no FX verdict codes, so the general ones of CEB.md §5 are used):

- within the quota → ``120`` (acknowledged) "fx: recorded (payer year total USD …)";
- over it → ``300`` (flagged for manual review) "fx: payer annual quota exceeded: … USD of 50,000".
  The payment is still recorded: flagging does not stop it, and later payments stay flagged while
  the year's total is over the quota.

``appType`` 2 replaces the payment's earlier amount (and year) in the account; ``appType`` 3 removes
it and is answered ``120`` "fx: payment withdrawn …". Payments are keyed by (``payCode``,
``payTransactionId``). ``state()`` masks ID numbers, since it is served over HTTP.

Export (collections 403 against lists 603 and summary results 792) is ``fx_export.ExportFxLedger``;
its verdicts go back as CEB404 receipts, always ``120`` (see there).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from schemas.catalog import FILED
from schemas.receipts import DocumentReturn, document_fields, receipt_xml

from .base import Regulator
from .documents import Delivered
from .export_wire import export_return
from .fx_export import ExportFxLedger

log = logging.getLogger("swx.mock.fx")

PAYMENT = FILED["411"]
COLLECTION = FILED["403"]
ACKNOWLEDGED, FLAGGED = "120", "300"
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class FxPayment:
    payer: str
    year: str
    cny: Decimal
    usd: Decimal


@dataclass(frozen=True, slots=True)
class FxResult:
    status: str
    info: str
    year_total_usd: Decimal


def _usd_text(amount: Decimal) -> str:
    return f"{amount:,.2f}" if amount != amount.to_integral_value() else f"{amount:,.0f}"


@dataclass
class FxLedger:
    """Payments and per-payer yearly totals; pure bookkeeping, no I/O."""

    rate: Decimal  # CNY per USD
    quota_usd: Decimal
    payments: dict[tuple[str, str], FxPayment] = field(default_factory=dict)
    totals: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def year_total(self, payer: str, year: str) -> Decimal:
        return self.totals.get((payer, year), Decimal(0))

    def _remove(self, key: tuple[str, str]) -> FxPayment | None:
        old = self.payments.pop(key, None)
        if old is not None:
            self.totals[(old.payer, old.year)] -= old.usd
        return old

    def record(self, head: Mapping[str, str]) -> FxResult:
        """Apply one payment document and say what to answer."""
        key = (head.get("payCode", ""), head.get("payTransactionId", ""))
        payer = head.get("payerIdNumber", "")
        year = (head.get("payTime") or head.get("appTime") or "")[:4]
        if head.get("appType") == "3":
            old = self._remove(key)
            if old is None:
                return FxResult(ACKNOWLEDGED, "fx: no such payment on record; nothing to withdraw", Decimal(0))
            total = self.year_total(old.payer, old.year)
            return FxResult(ACKNOWLEDGED, f"fx: payment withdrawn (payer year total USD {_usd_text(total)})", total)
        self._remove(key)  # appType 2 replaces; a repeated appType 1 must not count twice
        try:
            cny = Decimal(head.get("amountPaid") or "0")
        except InvalidOperation:
            cny = Decimal(0)
        usd = (cny / self.rate).quantize(_CENT, ROUND_HALF_UP)
        self.payments[key] = FxPayment(payer, year, cny, usd)
        self.totals[(payer, year)] += usd
        total = self.year_total(payer, year)
        if total > self.quota_usd:
            return FxResult(FLAGGED, f"fx: payer annual quota exceeded: {_usd_text(total)} USD of "
                                     f"{_usd_text(self.quota_usd)}", total)
        return FxResult(ACKNOWLEDGED, f"fx: recorded (payer year total USD {_usd_text(total)})", total)


def _mask(id_number: str) -> str:
    return id_number[:4] + "*" * max(len(id_number) - 8, 0) + id_number[-4:] if len(id_number) > 8 else "****"


class Fx(Regulator):
    """Answers payments with 412 receipts; see the module docstring."""

    name = "fx"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.ledger = FxLedger(Decimal(str(s.fx_rate)), Decimal(str(s.fx_quota_usd)))
        self.flagged = 0
        self.exports = ExportFxLedger()
        self.export_flagged = 0

    async def on_message(self, msg: Delivered) -> None:
        if msg.code in ("403", "603", "792"):
            await self._export(msg)
            return
        if msg.code != "411":
            return
        returns = []
        for doc in msg.docs:
            result = self.ledger.record(doc.head)
            if result.status == FLAGGED:
                self.flagged += 1
                log.info("fx: payment %s flagged: %s", doc.head.get("payTransactionId"), result.info)
            returns.append(DocumentReturn(document_fields(PAYMENT, doc.head, None), result.status, result.info))
        if returns:
            await self.ctx.send_receipt(receipt_xml(PAYMENT, returns))

    async def _export(self, msg: Delivered) -> None:
        ledger, answers = self.exports, []
        if msg.code == "792":
            for doc in msg.docs:
                ledger.take_result(doc.head, doc.lines)
            return
        if msg.code == "403":
            answers = [(doc.head, ledger.take_collection(doc.head)) for doc in msg.docs]
        else:  # a list: answer again each collection that was waiting for it
            for doc in msg.docs:
                key = ledger.take_list(doc.head, doc.lines)
                if key is not None:
                    answers.append((ledger.collections[key], ledger.match(key)))
        returns = []
        for head, result in answers:
            if result.flagged:
                self.export_flagged += 1
                log.info("fx: collection for order %s flagged: %s", head.get("orderNo"), result.info)
            returns.append(export_return(COLLECTION, head, ACKNOWLEDGED, result.info))
        if returns:
            await self.ctx.send_receipt(receipt_xml(COLLECTION, returns))

    def state(self) -> dict:
        return {
            "export": {**self.exports.state(), "flaggedAnswers": self.export_flagged},
            "payments": len(self.ledger.payments),
            "flagged": self.flagged,
            "rate": str(self.ledger.rate),
            "quotaUsd": str(self.ledger.quota_usd),
            "payers": [{"payer": _mask(payer), "year": year, "usd": str(total)}
                       for (payer, year), total in self.ledger.totals.items() if total],
        }
