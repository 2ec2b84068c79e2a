"""Business rules inside one export document (CEB.md §8.3), checked before anything is stored.

The import rules' machinery (``rules.py``: one small function per rule, the fields it reads named by
``@reads``) with the export half's own facts: order types and trade modes, the simplified (A) and
summary (B) lists, bonded-zone fields, transport that may come later, split filings and the summary
request's window. What needs another document (a list against its order, a return against its list)
is customs' to match (``mock_customs``), not a check of one document.
"""

from __future__ import annotations

from schemas.documents import FiledDocument

from .findings import Finding
from .rules import (
    COMMON,
    Rule,
    Texts,
    _dec,
    _decs,
    _finding,
    hs_codes,
    is_real_time,
    line_numbers,
    line_totals,
    order_amounts,
    reads,
    second_quantity,
    weights,
)

ORDER_TYPES = {"E": "B2C export", "B": "B2B export (9710)", "W": "overseas-warehouse booking (9810)"}
TRADE_MODES = {
    "9610": "general e-commerce export", "1210": "export from a special customs-supervised zone",
    "9710": "B2B export", "9810": "export via an overseas warehouse",
}
RETURN_TRADE_MODES = {"9661": "return of goods exported outside a zone", "1261": "return from a zone"}
STATISTICS_FLAGS = {"A": "simplified declaration", "B": "summary declaration"}
POSTAL = "6"  # trafMode of postal transport: the only one that may leave the master bill empty (ours)
CHINA = "142"
# HS chapters (the first two digits of a heading); 77 is reserved and unused.
HS_CHAPTERS = frozenset(f"{n:02d}" for n in range(1, 98)) - {"77"}


def _blank(text: str | None) -> bool:
    return not (text and text.strip())


@reads(head=("orderType",))
def order_type(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    kind = h["orderType"]
    if kind is not None and kind not in ORDER_TYPES:
        words = ", ".join(f"{k} ({v})" for k, v in ORDER_TYPES.items())
        out.append(_finding(doc, doc.head, "orderType", f"orderType '{kind}' is not an export order type: use {words}"))


_CURRENCY_FIELDS = ("currency", "fCurrency", "iCurrency", "country")


@reads(head=_CURRENCY_FIELDS, lines=("currency", "country"))
def code_sets(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    """Currencies and countries are JGS-20 three-digit codes (not fixed to 142 on export)."""
    for fields, texts in ((doc.head, h), *zip(doc.lines, lines)):
        for name in _CURRENCY_FIELDS:
            value = texts.get(name)
            if value is not None and not (len(value) == 3 and value.isascii() and value.isdigit()):
                what = "country" if name == "country" else "currency"
                out.append(_finding(doc, fields, name, f"{name} '{value}' must be a three-digit JGS-20 {what} code"))


@reads(head=("charge",))
def charge(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    value = _dec(h["charge"])
    if value is not None and value <= 0:
        out.append(_finding(doc, doc.head, "charge", f"charge must be greater than 0: it is the money received; got {value}"))


@reads(head=("freight", "insuredFee"))
def fees(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    for name, value in zip(("freight", "insuredFee"), _decs(h["freight"], h["insuredFee"])):
        if value is not None and value < 0:
            out.append(_finding(doc, doc.head, name, f"{name} cannot be negative; got {value} (use 0 when there is none)"))


@reads(head=("tradeMode", "ieFlag", "statisticsFlag", "licenseNo", "iacCode", "iacName", "emsNo"),
       lines=("itemRecordNo", "gcode"))
def export_list(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    mode = h["tradeMode"]
    if mode is not None and mode not in TRADE_MODES:
        words = ", ".join(f"{k} ({v})" for k, v in TRADE_MODES.items())
        out.append(_finding(doc, doc.head, "tradeMode", f"tradeMode '{mode}' is not an e-commerce export mode: use {words}"))
    if (h["ieFlag"] or "E") != "E":
        out.append(_finding(doc, doc.head, "ieFlag", f"ieFlag must be E (export) on an export list; got '{h['ieFlag']}'"))
    flag = h["statisticsFlag"]
    if flag is not None and flag not in STATISTICS_FLAGS:
        out.append(_finding(doc, doc.head, "statisticsFlag",
                            f"statisticsFlag '{flag}' must be A (simplified declaration) or B (summary declaration)"))
    if flag == "A" and not _blank(h["licenseNo"]):
        out.append(_finding(doc, doc.head, "statisticsFlag",
                            "a list with a licenseNo must be B (summary declaration): simplified declaration (A) is only "
                            "for goods that need no licence"))
    if flag == "A":
        for li, t in zip(doc.lines, lines):
            gcode = t["gcode"] or ""
            if len(gcode) >= 4 and gcode[:4].isdigit() and gcode[:2] not in HS_CHAPTERS:
                out.append(_finding(doc, li, "gcode", f"line {li.text('gnum')}: gcode '{gcode}' does not start with an "
                                    "existing tariff heading, which a simplified (A) list is judged by"))
    if mode == "1210":
        for name in ("iacCode", "iacName", "emsNo"):
            if _blank(h[name]):
                out.append(_finding(doc, doc.head, name, f"{name} is required for export from a special zone (tradeMode 1210)"))
        for li, t in zip(doc.lines, lines):
            if _blank(t["itemRecordNo"]):
                out.append(_finding(doc, li, "itemRecordNo",
                                    f"line {li.text('gnum')}: itemRecordNo (the zone's record number of the goods) is "
                                    "required for tradeMode 1210"))


@reads(head=("reason",))
def cancel_reason(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    if h["reason"] is not None and _blank(h["reason"]):
        out.append(_finding(doc, doc.head, "reason", "reason must say why the list is withdrawn", "-623012"))


@reads(head=("msgCount", "msgSeqNo"))
def split_parts(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    code = f"-{doc.mtype.code}006"
    try:
        count, seq = int(h["msgCount"] or ""), int(h["msgSeqNo"] or "")
    except ValueError:
        return  # the schema layer says so
    if count < 1:
        out.append(_finding(doc, doc.head, "msgCount", f"msgCount is the number of parts and must be at least 1; got {count}", code))
    elif not 1 <= seq <= count:
        out.append(_finding(doc, doc.head, "msgSeqNo", f"msgSeqNo {seq} must be between 1 and msgCount {count}", code))


def _transport(names: tuple[str, ...]) -> Rule:
    @reads(head=("trafMode", *names))
    def transport(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
        if h["trafMode"] == POSTAL:
            return
        for name in names:
            if _blank(h[name]):
                out.append(_finding(doc, doc.head, name, f"{name} is required unless the goods travel by post (trafMode 6)"))

    return transport


@reads(head=("ieFlag", "billNo"))
def arrival(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    if (h["ieFlag"] or "E") != "E":
        out.append(_finding(doc, doc.head, "ieFlag", f"ieFlag must be E (export) on an arrival; got '{h['ieFlag']}'"))
    if not doc.lines and _blank(h["billNo"]):
        out.append(_finding(doc, doc.head, "billNo", "an arrival without ArrivalList lines covers a master bill's waybills, "
                            "so its billNo is required"))


def _inbound(what: str) -> Rule:
    @reads(head=("ieFlag",))
    def inbound(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
        if (h["ieFlag"] or "I") != "I":
            out.append(_finding(doc, doc.head, "ieFlag", f"ieFlag must be I (goods coming back) on {what}; got '{h['ieFlag']}'"))

    return inbound


@reads(head=("tradeMode", "country"))
def export_return(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    mode = h["tradeMode"]
    if mode is None or _blank(mode):
        out.append(_finding(doc, doc.head, "tradeMode", "tradeMode is required on a return: 9661 (outside a zone) or 1261 (from a zone)"))
    elif mode not in RETURN_TRADE_MODES:
        out.append(_finding(doc, doc.head, "tradeMode", f"tradeMode '{mode}' is not a return mode: use 9661 (9610, 9710 and "
                            "9810 originals) or 1261 (1210 originals)"))
    if h["country"] == CHINA:
        out.append(_finding(doc, doc.head, "country", "country is where the goods come back from and cannot be 142 (China)"))


@reads(head=("startTime", "endTime", "summaryFlag", "itemNameFlag"))
def summary_request(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    start, end = h["startTime"], h["endTime"]
    if (start is None) != (end is None):
        name = "endTime" if end is None else "startTime"
        out.append(_finding(doc, doc.head, name, "startTime and endTime come together: give both (a time window) or neither"))
    elif start is not None and end is not None and is_real_time(start, "%Y%m%d%H%M%S", 14) \
            and is_real_time(end, "%Y%m%d%H%M%S", 14) and end < start:
        out.append(_finding(doc, doc.head, "endTime", f"endTime {end} is before startTime {start}"))
    if start is None and end is None and not doc.lines:
        out.append(_finding(doc, doc.head, "startTime", "a summary names its lists (SummaryApplyList invtNo) or a time "
                            "window (startTime and endTime); this one has neither"))
    if h["summaryFlag"] is not None and h["summaryFlag"] not in ("1", "2"):
        out.append(_finding(doc, doc.head, "summaryFlag", f"summaryFlag '{h['summaryFlag']}' must be 1 (one declaration per "
                            "seller) or 2 (per seller and producer)"))
    if h["itemNameFlag"] is not None and h["itemNameFlag"] not in ("0", "1"):
        out.append(_finding(doc, doc.head, "itemNameFlag", f"itemNameFlag '{h['itemNameFlag']}' must be 1 (group by the "
                            "lines' itemName) or 0 (by the classification name)"))


EXPORT_RULES: dict[str, tuple[Rule, ...]] = {
    "export_order": COMMON + (order_type, code_sets, order_amounts, line_totals, line_numbers),
    "collection": COMMON + (code_sets, charge),
    "export_waybill": COMMON + (code_sets, fees, weights),
    "export_inventory": COMMON + (export_list, code_sets, fees, line_totals, line_numbers, second_quantity, weights, hs_codes),
    "export_cancel": COMMON + (cancel_reason,),
    "consolidation": COMMON + (split_parts, line_numbers, weights),
    "arrival": COMMON + (split_parts, arrival, _transport(("billNo",)), line_numbers),
    "departure": COMMON + (split_parts, _transport(("trafName", "voyageNo", "billNo")), line_numbers),
    "export_refund": COMMON + (export_return, _inbound("a return"), line_numbers, second_quantity, hs_codes),
    "refund_tally": COMMON + (_inbound("a return tally"),),
    "summary": COMMON + (split_parts, summary_request),
}
