"""What the export half looks like on the wire for the stand-ins: receipt lines, split filings, and
customs' own CEB792 summary result.

Shared by customs, inspection, tax and FX, so that each writes its export receipts (304…702) the
same way and reads a 792 the same way. Why a module of its own: the export receipts require fields
the import writer leaves out when empty (604 ``invtNo`` before customs numbers the list, 508
``billNo``, every ``preNo`` and ``msgSeqNo``), and the 792 is a customs *message*, not a receipt,
so neither fits ``schemas.receipts`` as it stands.

- :func:`export_return`: one receipt line carrying every field its receipt node requires (CEB.md
  §8.2); ``preNo`` is the filing's when the head has an 18-character one, else 18 zeros as on import
  (the e-port numbers the filing, customs does not see that number).
- :class:`SplitParts`: split filings (507, 509, 607, 701 with ``msgCount`` > 1, §8.3) gathered by
  (filer code, ``copNo``) until parts 1..msgCount are all in. A part that breaks the sequence
  (``msgSeqNo`` outside 1..msgCount, a second part with the same number, a ``msgCount`` other than
  its siblings') is refused on its own with ``-(code × 1000 + 6)``; a part for a document already
  processed with ``-(code × 1000 + 2)`` (§8.5).
- :func:`order_key`, :func:`waybill_key`: how an export document names its order and its waybill.
- :func:`summary_result_xml`: a ``CEB792Message`` (``SummaryResult`` head + lines) in the official
  field order (``documents.SUMMARY_RESULT`` describes it for the inbound reader: tax and FX are
  delivered the 792s customs sends to the window).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from lxml import etree

from mock_customs.documents import SUMMARY_RESULT, ReceivedDoc
from schemas.catalog import CEB_NS, EXPORT, PLACEHOLDERS, MessageType
from schemas.receipts import DocumentReturn, new_guid

ZERO_PRE_NO = "0" * 18
# Receipt fields the official schema lets a receipt leave out (all others are required, maybe empty).
_OPTIONAL = {"404": {"payNo"}, "702": {"sumNo"}, "214": {"ebpCode", "ebcCode"}}
_MAX = {"copNo": 30, "coElNo": 30, "invtNo": 20, "billNo": 37, "logisticsNo": 32, "orderNo": 60, "payNo": 60}

_RESULT_HEAD = ("guid", "customsCode", "sumNo", "opDate", "declSeqNo", "decTmpNo", "decPreNo", "entryId", "decState",
                "agentCode", "agentName", "ebcCode", "ebcName", "declAgentCode", "declAgentName", "grossWeight",
                "netWeight", "msgCount", "msgSeqNo", "note")
_RESULT_HEAD_OPTIONAL = {"decTmpNo", "decPreNo", "entryId", "note"}
_RESULT_LINE = ("invtNo", "logisticsNo", "gseqno", "gnum", "gcode")


OrderKey = tuple[str, str, str]


ZERO = Decimal(0)


def amount(text: str | None) -> Decimal:
    """A field's amount; 0 where it is absent or not a number (the window checked the filing)."""
    try:
        return Decimal(text or "0")
    except InvalidOperation:
        return ZERO


def order_key(head: Mapping[str, str]) -> OrderKey:
    """An export order's key (§8.2), as a list, a collection or the order itself names it: (ebpCode,
    orderNo), or (ebcCode, orderNo) for a foreign platform without a code (ebpCode 无)."""
    ebp = head.get("ebpCode", "")
    return ("ebc", head.get("ebcCode", ""), head.get("orderNo", "")) if ebp == PLACEHOLDERS["ebpCode"] \
        else ("ebp", ebp, head.get("orderNo", ""))


def waybill_key(head: Mapping[str, str]) -> tuple[str, str]:
    return head.get("logisticsCode", ""), head.get("logisticsNo", "")


def pre_no_of(head: Mapping[str, str]) -> str:
    pre = head.get("preNo") or ""
    return pre if len(pre) == 18 else ZERO_PRE_NO


def export_return(mtype: MessageType, head: Mapping[str, str], status: str, info: str,
                  **values: str) -> DocumentReturn:
    """One line of ``mtype``'s receipt for the filed ``head`` (``values`` override or add fields)."""
    merged = {**head, **values}
    optional = _OPTIONAL.get(mtype.receipt_code, set())
    fields: dict[str, str] = {}
    for name in mtype.receipt_fields:
        value = merged.get(name) or ""
        if name == "preNo":
            value = pre_no_of(merged)
        elif name == "msgSeqNo" and not value:
            value = "1"
        if name in _MAX:
            value = value[: _MAX[name]]
        if value or name not in optional:
            fields[name] = value
    return DocumentReturn(fields, status, info)


def broken_code(mtype: MessageType) -> str:
    return f"-{int(mtype.code) * 1000 + 6}"


def repeated_code(mtype: MessageType) -> str:
    return f"-{int(mtype.code) * 1000 + 2}"


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text or "")
    except ValueError:
        return default


@dataclass
class _Gathering:
    count: int
    parts: dict[int, ReceivedDoc] = field(default_factory=dict)


class SplitParts:
    """Parts of split filings of one message type, until each document is whole (module docstring)."""

    def __init__(self, mtype: MessageType) -> None:
        self.mtype = mtype
        self.filer_field = mtype.key[0]  # operatorCode / logisticsCode / agentCode: the receipt repeats it
        self.open: dict[tuple[str, str], _Gathering] = {}
        self.done: set[tuple[str, str]] = set()

    def key(self, head: Mapping[str, str]) -> tuple[str, str]:
        return head.get(self.filer_field, ""), head.get("copNo", "")

    def add(self, doc: ReceivedDoc) -> tuple[list[ReceivedDoc] | None, str | None]:
        """(the parts in order, when this one completes the document; else None) and, when the part
        is refused, why (the info of its 100 receipt)."""
        h, m = doc.head, self.mtype
        key = self.key(h)
        count, seq = _int(h.get("msgCount"), 1), _int(h.get("msgSeqNo"), 1)
        if key in self.done:
            return None, f"{repeated_code(m)} {self.filer_field} {key[0]} copNo {key[1]} is already processed"
        if count < 1 or not 1 <= seq <= count:
            return None, f"{broken_code(m)} msgSeqNo {h.get('msgSeqNo')} is outside 1..msgCount {h.get('msgCount')}"
        gathering = self.open.setdefault(key, _Gathering(count))
        if count != gathering.count:
            return None, f"{broken_code(m)} msgCount {count} ≠ msgCount {gathering.count} of the parts before"
        if seq in gathering.parts:
            return None, f"{broken_code(m)} part msgSeqNo {seq} of copNo {key[1]} has already arrived"
        gathering.parts[seq] = doc
        if len(gathering.parts) < count:
            return None, None
        del self.open[key]
        self.done.add(key)
        return [gathering.parts[i] for i in range(1, count + 1)], None

    def waiting(self) -> list[dict[str, object]]:
        return [{"filer": k[0], "copNo": k[1], "msgCount": g.count, "arrived": sorted(g.parts)}
                for k, g in self.open.items()]


@dataclass
class ResultPart:
    """One ``SummaryResult`` of a 792: its head values and its lines (invtNo, logisticsNo, gseqno, gnum, gcode)."""

    head: dict[str, str]
    lines: list[dict[str, str]] = field(default_factory=list)


def summary_result_xml(parts: Sequence[ResultPart], *, guid: str | None = None) -> str:
    """A ``CEB792Message`` holding ``parts`` (fields in the official order; empty optional ones left out)."""
    c = f"{{{CEB_NS}}}"
    root = etree.Element(c + "CEB792Message", nsmap={"ceb": CEB_NS}, guid=guid or new_guid(), version="1.0")
    for part in parts:
        node = etree.SubElement(root, c + "SummaryResult")
        head = etree.SubElement(node, c + "SummaryResultHead")
        for name in _RESULT_HEAD:
            value = part.head.get(name) or ""
            if value or name not in _RESULT_HEAD_OPTIONAL:
                etree.SubElement(head, c + name).text = value
        for line in part.lines:
            el = etree.SubElement(node, c + "SummaryResultList")
            for name in _RESULT_LINE:
                etree.SubElement(el, c + name).text = line.get(name, "")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")


EXPORT_CODES = frozenset(EXPORT)
__all__ = ["EXPORT_CODES", "SUMMARY_RESULT", "OrderKey", "ResultPart", "SplitParts", "export_return", "order_key",
           "summary_result_xml", "waybill_key"]
