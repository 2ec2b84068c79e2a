"""Business rules inside one document (CEB.md §3), checked before anything is stored as declared.

Each rule is a small function over one :class:`FiledDocument` that yields findings; ``RULES`` says
which rules apply to which kind of document. Rules read fields defensively: a field the schema
layer already refused (missing, not a number) is skipped here rather than reported twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal, InvalidOperation

from schemas.catalog import ENTERPRISE_FIELDS
from schemas.identifiers import enterprise_code_problem, is_valid_id_number

from .documents import Fields, FiledDocument
from .findings import BAD_ENTERPRISE_CODE, Finding

Rule = Callable[[FiledDocument], Iterator[Finding]]

UUID_UPPER = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
HS_CODE = re.compile(r"^\d{10}$")
IMPORT_TRADE_MODES = {"9610": "direct purchase", "1210": "bonded"}


def _dec(fields: Fields, name: str) -> Decimal | None:
    text = fields.text(name)
    if text is None or not text.strip():
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _finding(doc: FiledDocument, fields: Fields, name: str, message: str, code: str | None = None) -> Finding:
    return Finding("rule", code or doc.mtype.check_code, message, fields.path(name), fields.line(name), doc.label)


def guid_format(doc: FiledDocument) -> Iterator[Finding]:
    guid = doc.head.text("guid")
    if guid is not None and not UUID_UPPER.match(guid):
        yield _finding(doc, doc.head, "guid", f"guid '{guid}' must be an upper-case UUID (8-4-4-4-12 hex digits)")


def app_type_and_status(doc: FiledDocument) -> Iterator[Finding]:
    h = doc.head
    app_type = h.text("appType")
    allowed = ("1",) if doc.mtype.new_only else ("1", "2", "3")
    if app_type is not None and app_type not in allowed:
        words = "only 1 (new)" if doc.mtype.new_only else "1 (new), 2 (change) or 3 (delete)"
        yield _finding(doc, h, "appType", f"appType '{app_type}' is not allowed here: use {words}")
    status = h.text("appStatus")
    if status is not None and status not in ("1", "2"):
        yield _finding(doc, h, "appStatus", f"appStatus '{status}' must be 1 (saved) or 2 (declared)")


def _timestamp(doc: FiledDocument, fields: Fields, name: str, fmt: str, words: str) -> Iterator[Finding]:
    text = fields.text(name)
    if not text:
        return
    try:
        datetime.strptime(text, fmt)
        ok = len(text) == len(datetime(2000, 1, 1).strftime(fmt))
    except ValueError:
        ok = False
    if not ok:
        yield _finding(doc, fields, name, f"{name} '{text}' is not a real date-time in the form {words}")


def timestamps(doc: FiledDocument) -> Iterator[Finding]:
    h = doc.head
    for name in ("appTime", "payTime", "logisticsTime"):
        yield from _timestamp(doc, h, name, "%Y%m%d%H%M%S", "YYYYMMDDhhmmss")
    for name in ("declTime", "ieDate"):
        yield from _timestamp(doc, h, name, "%Y%m%d", "YYYYMMDD")


def enterprise_codes(doc: FiledDocument) -> Iterator[Finding]:
    for name in ENTERPRISE_FIELDS:
        code = doc.head.text(name)
        if code:
            problem = enterprise_code_problem(code)
            if problem:
                yield _finding(doc, doc.head, name, f"{name} '{code}' {problem}", BAD_ENTERPRISE_CODE)


def identity_numbers(doc: FiledDocument) -> Iterator[Finding]:
    h = doc.head
    for type_field, number_field in (("buyerIdType", "buyerIdNumber"), ("payerIdType", "payerIdNumber")):
        id_type = h.text(type_field)
        if id_type is None:
            continue
        if id_type != "1":
            yield _finding(doc, h, type_field, f"{type_field} must be 1 (resident ID card); got '{id_type}'")
            continue
        number = h.text(number_field) or ""
        if number and not is_valid_id_number(number):
            yield _finding(
                doc, h, number_field,
                f"{number_field} '{number}' is not a valid resident ID number: 18 characters whose last "
                "one is the GB 11643 check digit",
            )


def order_amounts(doc: FiledDocument) -> Iterator[Finding]:
    h = doc.head
    goods, freight, tax, discount, paid = (_dec(h, n) for n in ("goodsValue", "freight", "taxTotal", "discount", "acturalPaid"))
    if None not in (goods, freight, tax, discount, paid):
        expected = goods + freight + tax - discount
        if paid != expected:
            yield _finding(
                doc, h, "acturalPaid",
                f"acturalPaid {paid} must equal goodsValue {goods} + freight {freight} + taxTotal {tax} "
                f"- discount {discount} = {expected}",
            )
    totals = [_dec(li, "totalPrice") for li in doc.lines]
    if goods is not None and totals and None not in totals:
        total = sum(totals, Decimal(0))
        if goods != total:
            yield _finding(doc, h, "goodsValue", f"goodsValue {goods} must equal the sum of the lines' totalPrice, {total}")


def line_totals(doc: FiledDocument) -> Iterator[Finding]:
    for li in doc.lines:
        price, qty, total = _dec(li, "price"), _dec(li, "qty"), _dec(li, "totalPrice")
        if None not in (price, qty, total) and price * qty != total:
            yield _finding(
                doc, li, "totalPrice",
                f"line {li.text('gnum')}: totalPrice {total} must equal price {price} × qty {qty} = {price * qty}",
            )


def line_numbers(doc: FiledDocument) -> Iterator[Finding]:
    code = {"order": "-301002", "inventory": "-621027"}.get(doc.mtype.kind, doc.mtype.check_code)
    seen: set[int] = set()
    for position, li in enumerate(doc.lines, start=1):
        text = (li.text("gnum") or "").strip()
        try:
            gnum = int(text)
        except ValueError:
            continue  # the schema layer says it is not an integer
        if gnum in seen:
            yield _finding(doc, li, "gnum", f"gnum {gnum} is repeated: each line needs its own number", code)
        elif gnum != position:
            yield _finding(doc, li, "gnum", f"gnum must run 1, 2, 3 … in line order: line {position} has gnum {gnum}", code)
        seen.add(gnum)


def second_quantity(doc: FiledDocument) -> Iterator[Finding]:
    for li in doc.lines:
        unit2, qty2 = li.text("unit2"), li.text("qty2")
        has_unit, has_qty = bool(unit2 and unit2.strip()), bool(qty2 and qty2.strip())
        where = f"line {li.text('gnum')}"
        if has_unit != has_qty:
            name = "qty2" if has_unit else "unit2"
            yield _finding(doc, li, name, f"{where}: unit2 and qty2 go together: give both or neither", "-625009")
        elif has_unit:
            value = _dec(li, "qty2")
            if value is not None and value <= 0:
                yield _finding(doc, li, "qty2", f"{where}: qty2 must be greater than 0 when unit2 is given", "-625009")


def weights(doc: FiledDocument) -> Iterator[Finding]:
    h = doc.head
    for name in ("grossWeight", "netWeight", "weight"):
        value = _dec(h, name)
        if value is not None and value <= 0:
            yield _finding(doc, h, name, f"{name} must be greater than 0; got {value}")
    gross, net = _dec(h, "grossWeight"), _dec(h, "netWeight")
    if gross is not None and net is not None and net > gross:
        yield _finding(doc, h, "netWeight", f"netWeight {net} cannot exceed grossWeight {gross}")


def package_count(doc: FiledDocument) -> Iterator[Finding]:
    text = doc.head.text("packNo")
    try:
        count = int(text) if text is not None else 1
    except ValueError:
        return  # the schema layer says it is not an integer
    if count != 1:
        yield _finding(doc, doc.head, "packNo", f"packNo counts parcels and must be 1; got {count}")


def hs_codes(doc: FiledDocument) -> Iterator[Finding]:
    for li in doc.lines:
        gcode = li.text("gcode")
        if gcode is not None and not HS_CODE.match(gcode):
            yield _finding(doc, li, "gcode", f"line {li.text('gnum')}: gcode '{gcode}' must be a 10-digit HS code")


def trade_mode(doc: FiledDocument) -> Iterator[Finding]:
    h = doc.head
    mode = h.text("tradeMode")
    if mode is None:
        return
    if mode not in IMPORT_TRADE_MODES:
        yield _finding(doc, h, "tradeMode", f"tradeMode '{mode}' is not an import retail mode: use 9610 (direct purchase) or 1210 (bonded)")
    elif mode == "9610":
        for name in ("trafNo", "voyageNo", "billNo"):
            if not (h.text(name) or "").strip():
                yield _finding(doc, h, name, f"{name} is required for direct purchase (tradeMode 9610)")
    if (h.text("ieFlag") or "I") != "I":
        yield _finding(doc, h, "ieFlag", "ieFlag must be I (import) on an import declaration list")


COMMON: tuple[Rule, ...] = (guid_format, app_type_and_status, timestamps, enterprise_codes)
RULES: dict[str, tuple[Rule, ...]] = {
    "order": COMMON + (identity_numbers, order_amounts, line_totals, line_numbers),
    "payment": COMMON + (identity_numbers,),
    "waybill": COMMON + (weights, package_count),
    "waybill_status": COMMON,
    "inventory": COMMON + (identity_numbers, line_totals, line_numbers, second_quantity, weights, package_count, hs_codes, trade_mode),
    "cancel": COMMON + (identity_numbers,),
    "refund": COMMON + (identity_numbers, line_numbers, hs_codes),
    "delivery": COMMON + (line_numbers,),
}


def check_document(doc: FiledDocument) -> list[Finding]:
    findings: list[Finding] = []
    for rule in RULES[doc.mtype.kind]:
        findings.extend(rule(doc))
    return findings


def duplicate_keys(docs: list[FiledDocument]) -> list[Finding]:
    """Two documents of one message with the same business key."""
    first: dict[tuple[str, ...], FiledDocument] = {}
    findings = []
    for doc in docs:
        prior = first.setdefault(doc.key, doc)
        if prior is not doc:
            name = doc.mtype.key[-1]
            findings.append(_finding(
                doc, doc.head, name,
                f"this message files the same {doc.mtype.title} twice: documents {prior.index} and {doc.index} "
                f"share the key {', '.join(doc.mtype.key)}",
                doc.mtype.duplicate_code,
            ))
    return findings
