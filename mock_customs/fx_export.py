"""The FX stand-in on export (外汇, CEB.md §8.4 regulators table): money received against exports.

An exporter must bring the proceeds of its exports home. The stand-in matches each collection 403
(``charge``, ``currency``, ``payCode``/``payName``, ``payNo``, ``accountingDate``) with the list of
the same order (603, by ebpCode/ebcCode + orderNo), whose export value is Σ line ``totalPrice`` +
``freight`` + ``insuredFee`` in the list's currency, and, for B lists, with the customs declaration
(``entryId``) once customs' summary result (792) has it (matched through the 792 line's
``logisticsNo`` and the seller). Ours:

- ``matched``: charge = export value, same currency;
- ``under-received`` / ``over-received``: charge < / > export value (flagged);
- ``currency mismatch``: the money came in another currency than the list's (flagged);
- ``unmatched collection``: money for an order FX has no list of (flagged until the list comes);
- a list without a collection is ``awaiting collection`` (not flagged: B2B money comes later).

The verdict goes back as a CEB404 ``ReceiptsReturn`` for the collection, as the import FX answers
each payment with a 412. CEB404 allows only 100 and 120 (§8.4), and flagging does not stop the
money, so it is always ``120``: "fx: matched …", or "fx: flagged: under-received …". A collection
answered before its list came is answered again, with the match, when the list arrives. Pure
bookkeeping here; ``fx.Fx`` sends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mock_customs.export_wire import ZERO, OrderKey, amount, order_key

FLAGS = ("under-received", "over-received", "currency mismatch", "unmatched collection")


@dataclass
class ExportMatch:
    verdict: str
    info: str

    @property
    def flagged(self) -> bool:
        return self.verdict in FLAGS


@dataclass
class ExportFxLedger:
    collections: dict[OrderKey, dict[str, str]] = field(default_factory=dict)
    lists: dict[OrderKey, dict[str, Any]] = field(default_factory=dict)
    by_waybill: dict[tuple[str, str], OrderKey] = field(default_factory=dict)  # (ebcCode, logisticsNo) -> order
    _declared: dict[tuple[str, str], set[OrderKey]] = field(default_factory=dict)  # (sumNo, declSeqNo) -> orders

    def take_collection(self, head: Mapping[str, str]) -> ExportMatch:
        key = order_key(head)
        if head.get("appType") == "3":
            self.collections.pop(key, None)
            return ExportMatch("withdrawn", "fx: collection withdrawn")
        self.collections[key] = dict(head)
        return self.match(key)

    def take_list(self, head: Mapping[str, str], lines: Sequence[Mapping[str, str]]) -> OrderKey | None:
        """Record a list's export value; the order key when a collection for it is waiting for an answer."""
        key = order_key(head)
        if head.get("appType") == "3":
            self.lists.pop(key, None)
            return None
        goods = sum((amount(line.get("totalPrice")) for line in lines), ZERO)
        value = goods + amount(head.get("freight")) + amount(head.get("insuredFee"))
        currency = next((line.get("currency") for line in lines if line.get("currency")), head.get("fCurrency", ""))
        self.lists[key] = {"ebcCode": head.get("ebcCode", ""), "orderNo": head.get("orderNo", ""),
                           "logisticsNo": head.get("logisticsNo", ""), "statisticsFlag": head.get("statisticsFlag", ""),
                           "value": value, "currency": currency or "", "entryId": None}
        self.by_waybill[(head.get("ebcCode", ""), head.get("logisticsNo", ""))] = key
        return key if key in self.collections else None

    def take_result(self, head: Mapping[str, str], lines: Sequence[Mapping[str, str]]) -> None:
        """A 792: its entryId, when it has one, onto the B lists it (or an earlier 792 of it) named."""
        ebc = head.get("ebcCode", "")
        seen = self._declared.setdefault((head.get("sumNo", ""), head.get("declSeqNo", "")), set())
        for line in lines:
            key = self.by_waybill.get((ebc, line.get("logisticsNo", "")))
            if key is not None and self.lists[key]["statisticsFlag"] == "B":
                seen.add(key)
        if head.get("entryId"):
            for key in seen:
                if key in self.lists:
                    self.lists[key]["entryId"] = head["entryId"]

    def match(self, key: OrderKey) -> ExportMatch:
        money, lst = self.collections.get(key), self.lists.get(key)
        if money is None:
            return ExportMatch("awaiting collection", "fx: no collection for this order yet")
        charge, currency = amount(money.get("charge")), money.get("currency", "")
        payer = money.get("payCode") or money.get("payName") or "?"
        said = f"charge {charge} {currency} via {payer}" + (f" payNo {money['payNo']}" if money.get("payNo") else "")
        if lst is None:
            return ExportMatch("unmatched collection", f"fx: flagged: unmatched collection: {said}; no export list for "
                                                       f"order {key[2]}")
        value = lst["value"]
        if currency != lst["currency"]:
            return ExportMatch("currency mismatch", f"fx: flagged: currency mismatch: {said}; export value "
                                                    f"{value} {lst['currency']}")
        if charge < value:
            return ExportMatch("under-received", f"fx: flagged: under-received: {said} < export value {value} "
                                                 f"(short {value - charge})")
        if charge > value:
            return ExportMatch("over-received", f"fx: flagged: over-received: {said} > export value {value} "
                                                f"(over {charge - value})")
        return ExportMatch("matched", f"fx: matched: {said} = export value {value}")

    def state(self) -> dict[str, Any]:
        rows = []
        for key in sorted(set(self.collections) | set(self.lists)):
            m, lst, money = self.match(key), self.lists.get(key), self.collections.get(key)
            rows.append({"order": key[2], "by": key[1], "verdict": m.verdict, "flagged": m.flagged,
                         "charge": money.get("charge") if money else None, "payNo": money.get("payNo") if money else None,
                         "exportValue": str(lst["value"]) if lst else None, "currency": lst["currency"] if lst else None,
                         "statisticsFlag": lst["statisticsFlag"] if lst else None,
                         "entryId": lst["entryId"] if lst else None})
        return {"collections": len(self.collections), "lists": len(self.lists),
                "flagged": sum(r["flagged"] for r in rows), "orders": rows[-500:]}
