"""The export-refund ledger of the tax stand-in (出口退税, CEB.md §8.4 regulators table).

Export tax refund is claimed per seller (ebcCode) on goods that were both declared to customs and
proven to have left the country. The two facts the spec gives are kept: A (simplified) lists get no
refund, and the list line's ``itemName`` becomes the refund item name. The rest is ours:

- a B list (603) is remembered by (ebcCode, logisticsNo), its lines by gnum (itemName, else gname;
  FOB ``totalPrice``, ``currency``, ``gcode``);
- customs' summary result (792) maps each line (invtNo, gnum, gcode, logisticsNo) to a declaration
  item ``gseqno``; a later 792 for the same (sumNo, declSeqNo) brings ``entryId`` and ``decState``
  and replaces the earlier head (its lines stay when it has none);
- the departure (509) naming the list's waybill is the proof of exit.

A refund line is ``refundable`` once its 792 has an ``entryId`` and the departure is in; before, it
is ``awaiting declaration`` or ``awaiting exit``. Lines of A lists, or of lists tax never saw, named
by a 792 are counted as ``skipped``, never entered. Pure bookkeeping: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from mock_customs.export_wire import ZERO, amount, waybill_key


@dataclass
class RefundLine:
    ebc_code: str
    invt_no: str
    gnum: str
    gcode: str
    item_name: str
    total_price: Decimal
    currency: str
    logistics: tuple[str, str]
    sum_no: str = ""
    decl_seq_no: str = ""
    gseqno: str = ""

    def view(self, decl: Mapping[str, str], left: Mapping[str, str] | None) -> dict[str, Any]:
        entry_id = decl.get("entryId") or None
        status = "refundable" if entry_id and left is not None else \
            "awaiting exit" if entry_id else "awaiting declaration"
        return {"invtNo": self.invt_no, "gnum": self.gnum, "gcode": self.gcode, "itemName": self.item_name,
                "totalPrice": str(self.total_price), "currency": self.currency, "logisticsNo": self.logistics[1],
                "sumNo": self.sum_no, "declSeqNo": self.decl_seq_no, "gseqno": self.gseqno, "entryId": entry_id,
                "decState": decl.get("decState") or None, "leaveTime": (left or {}).get("leaveTime"), "status": status}


@dataclass
class RefundLedger:
    lists: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (ebcCode, logisticsNo) -> B list
    departed: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # waybill -> departure facts
    declarations: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (sumNo, declSeqNo) -> head
    lines: dict[tuple[str, str], RefundLine] = field(default_factory=dict)  # (invtNo, gnum) -> line
    counts: dict[str, int] = field(default_factory=lambda: {"bLists": 0, "aLists": 0, "departures": 0, "results": 0,
                                                            "skipped": 0})

    def take_list(self, head: Mapping[str, str], lines: Sequence[Mapping[str, str]]) -> None:
        if head.get("appType") == "3":
            return
        if head.get("statisticsFlag") != "B":
            self.counts["aLists"] += 1  # simplified lists claim no refund (§8.3)
            return
        self.counts["bLists"] += 1
        self.lists[(head.get("ebcCode", ""), head.get("logisticsNo", ""))] = {
            "ebcCode": head.get("ebcCode", ""), "waybill": waybill_key(head),
            "lines": {line.get("gnum", ""): dict(line) for line in lines}}

    def take_departure(self, head: Mapping[str, str], lines: Sequence[Mapping[str, str]]) -> None:
        self.counts["departures"] += 1
        for line in lines:
            key = (head.get("logisticsCode", ""), line.get("logisticsNo", ""))
            self.departed[key] = {"leaveTime": head.get("leaveTime", ""), "copNo": head.get("copNo", "")}

    def take_result(self, head: Mapping[str, str], lines: Sequence[Mapping[str, str]]) -> None:
        self.counts["results"] += 1
        key = (head.get("sumNo", ""), head.get("declSeqNo", ""))
        self.declarations[key] = {**self.declarations.get(key, {}), **{k: v for k, v in head.items() if v}}
        ebc = head.get("ebcCode", "")
        for line in lines:
            known = self.lists.get((ebc, line.get("logisticsNo", "")))
            source = known["lines"].get(line.get("gnum", "")) if known else None
            if source is None:
                self.counts["skipped"] += 1
                continue
            self.lines[(line.get("invtNo", ""), line.get("gnum", ""))] = RefundLine(
                ebc, line.get("invtNo", ""), line.get("gnum", ""), line.get("gcode") or source.get("gcode", ""),
                source.get("itemName") or source.get("gname", ""), amount(source.get("totalPrice")),
                source.get("currency", ""), known["waybill"], key[0], key[1], line.get("gseqno", ""))

    def for_seller(self, ebc_code: str) -> dict[str, Any]:
        views = [line.view(self.declarations.get((line.sum_no, line.decl_seq_no), {}), self.departed.get(line.logistics))
                 for line in self.lines.values() if line.ebc_code == ebc_code]
        refundable: dict[str, Decimal] = {}
        for v in views:
            if v["status"] == "refundable":
                refundable[v["currency"]] = refundable.get(v["currency"], ZERO) + Decimal(v["totalPrice"])
        return {"ebcCode": ebc_code, "lines": views,
                "refundableFob": {c: str(t) for c, t in refundable.items()},
                "counts": {s: sum(v["status"] == s for v in views)
                           for s in ("refundable", "awaiting exit", "awaiting declaration")}}

    def state(self) -> dict[str, Any]:
        sellers = sorted({line.ebc_code for line in self.lines.values()})
        return {"counts": dict(self.counts), "sellers": {s: self.for_seller(s)["counts"] for s in sellers}}
