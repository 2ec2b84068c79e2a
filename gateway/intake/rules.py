"""Business rules inside one document (CEB.md §3), checked before anything is stored as declared.

Each rule is a small function over one :class:`FiledDocument` that appends its findings to a list;
``RULES`` says which rules apply to which kind of document. The fields a kind's rules read are read
once, all together, before they run (``reads``). Rules read fields defensively: a field the schema
layer already refused (missing, not a number) is skipped here rather than reported twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from schemas.catalog import ENTERPRISE_FIELDS, PLACEHOLDERS
from schemas.documents import Fields, FiledDocument
from schemas.identifiers import enterprise_code_problem, is_valid_id_number

from .findings import BAD_ENTERPRISE_CODE, Finding

Texts = dict[str, "str | None"]
# (document, its head's fields read, each line's fields read, findings to append to)
Rule = Callable[[FiledDocument, Texts, list[Texts], list[Finding]], None]

UUID_UPPER = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
HS_CODE = re.compile(r"^\d{10}$")
IMPORT_TRADE_MODES = {"9610": "direct purchase", "1210": "bonded"}


def reads(head: tuple[str, ...] = (), lines: tuple[str, ...] = ()) -> Callable[[Rule], Rule]:
    """Names the head and line fields a rule reads: they are read for it, all at once, before it runs."""

    def mark(rule: Rule) -> Rule:
        rule.head_fields, rule.line_fields = head, lines  # type: ignore[attr-defined]
        return rule

    return mark


_decimals: dict[str, Decimal | None] = {}


def _dec(text: str | None) -> Decimal | None:
    """A field's finite number; None when absent, blank or not a number (the schema layer says so)."""
    if not text:
        return None
    # Amounts recur ("0.00", catalogue prices): each distinct text is parsed once.
    value = _decimals.get(text, _decimals)
    if value is _decimals:
        value = None
        stripped = text.strip()
        if stripped:
            try:
                value = Decimal(stripped)
            except InvalidOperation:
                value = None
            else:
                if not value.is_finite():
                    value = None
        if len(_decimals) >= 65536:
            _decimals.clear()
        _decimals[text] = value
    return value


def _decs(*texts: str | None) -> list[Decimal | None]:
    """:func:`_dec` of each, in one call."""
    get, found = _decimals.get, []
    for text in texts:
        value = get(text, _decimals)
        found.append(_dec(text) if value is _decimals else value)
    return found


_ZERO = Decimal(0)


def _finding(doc: FiledDocument, fields: Fields, name: str, message: str, code: str | None = None) -> Finding:
    return Finding("rule", code or doc.mtype.check_code, message, fields.path(name), fields.line(name), doc.label)


@reads(head=("guid",))
def guid_format(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    guid = h["guid"]
    if guid is not None and not UUID_UPPER.match(guid):
        out.append(_finding(doc, doc.head, "guid", f"guid '{guid}' must be an upper-case UUID (8-4-4-4-12 hex digits)"))


@reads(head=("appType", "appStatus"))
def app_type_and_status(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    app_type = h["appType"]
    allowed = ("1",) if doc.mtype.new_only else ("1", "2", "3")
    if app_type is not None and app_type not in allowed:
        words = "only 1 (new)" if doc.mtype.new_only else "1 (new), 2 (change) or 3 (delete)"
        out.append(_finding(doc, doc.head, "appType", f"appType '{app_type}' is not allowed here: use {words}"))
    status = h["appStatus"]
    if status is not None and status not in ("1", "2"):
        out.append(_finding(doc, doc.head, "appStatus", f"appStatus '{status}' must be 1 (saved) or 2 (declared)"))


_real_days: dict[str, bool] = {}


def _real_day(day: str) -> bool:
    """Whether 8 ASCII digits YYYYMMDD are a calendar date (year 1 on); each day is checked once."""
    ok = _real_days.get(day)
    if ok is None:
        try:
            date(int(day[:4]), int(day[4:6]), int(day[6:]))
            ok = True
        except ValueError:
            ok = False
        if len(_real_days) >= 65536:
            _real_days.clear()
        _real_days[day] = ok
    return ok


def is_real_time(text: str, fmt: str, width: int) -> bool:
    """Whether ``datetime.strptime(text, fmt)`` takes ``text`` and it is ``width`` characters long.

    ``fmt`` is ``%Y%m%d%H%M%S`` (width 14) or ``%Y%m%d`` (width 8). For plain ASCII digits of the full
    width, strptime's regex takes every field at full width, so it accepts exactly a real date (year
    1 on) and hour < 24, minute and second < 60: checked here without it. Anything else (a space-padded
    day, other scripts' digits) is left to strptime itself.
    """
    if len(text) == width and text.isascii() and text.isdigit():
        day = text[:8]
        ok = _real_days.get(day)
        if not (_real_day(day) if ok is None else ok):
            return False
        return width == 8 or (text[8:10] < "24" and text[10:12] < "60" and text[12:] < "60")
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return False
    return len(text) == width


_TIMESTAMPS = {
    "appTime": ("%Y%m%d%H%M%S", 14, "YYYYMMDDhhmmss"),
    "payTime": ("%Y%m%d%H%M%S", 14, "YYYYMMDDhhmmss"),
    "logisticsTime": ("%Y%m%d%H%M%S", 14, "YYYYMMDDhhmmss"),
    "declTime": ("%Y%m%d", 8, "YYYYMMDD"),
    "ieDate": ("%Y%m%d", 8, "YYYYMMDD"),
    "accountingDate": ("%Y%m%d%H%M%S", 14, "YYYYMMDDhhmmss"),  # export: money received (403)
    "leaveTime": ("%Y%m%d%H%M%S", 14, "YYYYMMDDhhmmss"),  # export: departure (509)
    "startTime": ("%Y%m%d%H%M%S", 14, "YYYYMMDDhhmmss"),  # export: a summary's window (701)
    "endTime": ("%Y%m%d%H%M%S", 14, "YYYYMMDDhhmmss"),
}


_TIMESTAMP_NAMES = tuple(_TIMESTAMPS)


@reads(head=_TIMESTAMP_NAMES)
def timestamps(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    for name in _TIMESTAMP_NAMES:  # forms unpacked only for the fields that are there
        text = h[name]
        if text:
            fmt, width, words = _TIMESTAMPS[name]
            if not is_real_time(text, fmt, width):
                out.append(_finding(doc, doc.head, name, f"{name} '{text}' is not a real date-time in the form {words}"))


_code_problems: dict[str, str | None] = {}


def _code_problem(code: str) -> str | None:
    # The same few thousand enterprise codes recur in every message: check each one once.
    problem = _code_problems.get(code, _code_problems)
    if problem is _code_problems:
        if len(_code_problems) >= 65536:
            _code_problems.clear()
        problem = _code_problems[code] = enterprise_code_problem(code)
    return problem


# Codes checked for their form only: a producer (export ownerCode) is registered with customs, not here.
CODE_FIELDS = (*ENTERPRISE_FIELDS, "ownerCode")


@reads(head=CODE_FIELDS)
def enterprise_codes(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    for name in CODE_FIELDS:
        code = h[name]
        if code and PLACEHOLDERS.get(name) != code:  # a placeholder (无, NO) stands for "no code" (CEB.md §8.3)
            problem = _code_problems.get(code, _code_problems)
            if problem is _code_problems:
                problem = _code_problem(code)
            if problem:
                out.append(_finding(doc, doc.head, name, f"{name} '{code}' {problem}", BAD_ENTERPRISE_CODE))


@reads(head=("buyerIdType", "buyerIdNumber", "payerIdType", "payerIdNumber"))
def identity_numbers(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    for type_field, number_field in (("buyerIdType", "buyerIdNumber"), ("payerIdType", "payerIdNumber")):
        id_type = h[type_field]
        if id_type is None:
            continue
        if id_type != "1":
            out.append(_finding(doc, doc.head, type_field, f"{type_field} must be 1 (resident ID card); got '{id_type}'"))
            continue
        number = h[number_field] or ""
        if number and not is_valid_id_number(number):
            out.append(_finding(
                doc, doc.head, number_field,
                f"{number_field} '{number}' is not a valid resident ID number: 18 characters whose last "
                "one is the GB 11643 check digit",
            ))


@reads(head=("goodsValue", "freight", "taxTotal", "discount", "acturalPaid"), lines=("totalPrice",))
def order_amounts(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    goods, freight, tax, discount, paid = _decs(h["goodsValue"], h["freight"], h["taxTotal"], h["discount"], h["acturalPaid"])
    # "is not None" each: "None in (...)" would compare every Decimal with None (an ABC check apiece)
    if goods is not None and freight is not None and tax is not None and discount is not None and paid is not None:
        expected = goods + freight + tax - discount
        if paid != expected:
            out.append(_finding(
                doc, doc.head, "acturalPaid",
                f"acturalPaid {paid} must equal goodsValue {goods} + freight {freight} + taxTotal {tax} "
                f"- discount {discount} = {expected}",
            ))
    if goods is None or not lines:
        return
    total = _ZERO  # as sum(totals, Decimal(0))
    for line in lines:
        value = _dec(line["totalPrice"])
        if value is None:
            return
        total += value
    if goods != total:
        out.append(_finding(doc, doc.head, "goodsValue", f"goodsValue {goods} must equal the sum of the lines' totalPrice, {total}"))


@reads(lines=("price", "qty", "totalPrice"))
def line_totals(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    for li, t in zip(doc.lines, lines):
        price, qty, total = _decs(t["price"], t["qty"], t["totalPrice"])
        if price is not None and qty is not None and total is not None and price * qty != total:
            out.append(_finding(
                doc, li, "totalPrice",
                f"line {li.text('gnum')}: totalPrice {total} must equal price {price} × qty {qty} = {price * qty}",
            ))


_GNUM_CODES = {"order": "-301002", "inventory": "-621027", "export_order": "-301002", "export_inventory": "-621027"}
_POSITIONS = tuple(str(i) for i in range(100))


@reads(lines=("gnum",))
def line_numbers(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    code = _GNUM_CODES.get(doc.mtype.kind, doc.mtype.check_code)
    seen: set[int] = set()
    for position, t in enumerate(lines, start=1):
        text = t["gnum"]
        if position < 100 and text == _POSITIONS[position] and position not in seen:
            seen.add(position)  # the usual case: 1, 2, 3 … as plain digits
            continue
        try:
            gnum = int((text or "").strip())
        except ValueError:
            continue  # the schema layer says it is not an integer
        li = doc.lines[position - 1]
        if gnum in seen:
            out.append(_finding(doc, li, "gnum", f"gnum {gnum} is repeated: each line needs its own number", code))
        elif gnum != position:
            out.append(_finding(doc, li, "gnum", f"gnum must run 1, 2, 3 … in line order: line {position} has gnum {gnum}", code))
        seen.add(gnum)


@reads(lines=("unit2", "qty2"))
def second_quantity(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    for li, t in zip(doc.lines, lines):
        unit2, qty2 = t["unit2"], t["qty2"]
        has_unit, has_qty = bool(unit2 and unit2.strip()), bool(qty2 and qty2.strip())
        if has_unit != has_qty:
            name = "qty2" if has_unit else "unit2"
            out.append(_finding(doc, li, name, f"line {li.text('gnum')}: unit2 and qty2 go together: give both or neither", "-625009"))
        elif has_unit:
            value = _dec(qty2)
            if value is not None and value <= 0:
                out.append(_finding(doc, li, "qty2", f"line {li.text('gnum')}: qty2 must be greater than 0 when unit2 is given", "-625009"))


@reads(head=("grossWeight", "netWeight", "weight"))
def weights(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    gross, net, weight = _dec(h["grossWeight"]), _dec(h["netWeight"]), _dec(h["weight"])
    for name, value in (("grossWeight", gross), ("netWeight", net), ("weight", weight)):
        if value is not None and value <= 0:
            out.append(_finding(doc, doc.head, name, f"{name} must be greater than 0; got {value}"))
    if gross is not None and net is not None and net > gross:
        out.append(_finding(doc, doc.head, "netWeight", f"netWeight {net} cannot exceed grossWeight {gross}"))


@reads(head=("packNo",))
def package_count(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    text = h["packNo"]
    if text == "1":
        return
    try:
        count = int(text) if text is not None else 1
    except ValueError:
        return  # the schema layer says it is not an integer
    if count != 1:
        out.append(_finding(doc, doc.head, "packNo", f"packNo counts parcels and must be 1; got {count}"))


@reads(lines=("gcode",))
def hs_codes(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    for li, t in zip(doc.lines, lines):
        gcode = t["gcode"]
        if gcode is not None and not HS_CODE.match(gcode):
            out.append(_finding(doc, li, "gcode", f"line {li.text('gnum')}: gcode '{gcode}' must be a 10-digit HS code"))


@reads(head=("tradeMode", "trafNo", "voyageNo", "billNo", "ieFlag"))
def trade_mode(doc: FiledDocument, h: Texts, lines: list[Texts], out: list[Finding]) -> None:
    mode = h["tradeMode"]
    if mode is None:
        return
    if mode not in IMPORT_TRADE_MODES:
        out.append(_finding(doc, doc.head, "tradeMode", f"tradeMode '{mode}' is not an import retail mode: use 9610 (direct purchase) or 1210 (bonded)"))
    elif mode == "9610":
        for name in ("trafNo", "voyageNo", "billNo"):
            if not (h[name] or "").strip():
                out.append(_finding(doc, doc.head, name, f"{name} is required for direct purchase (tradeMode 9610)"))
    if (h["ieFlag"] or "I") != "I":
        out.append(_finding(doc, doc.head, "ieFlag", "ieFlag must be I (import) on an import declaration list"))


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


def duplicate_keys(docs: list[FiledDocument]) -> list[Finding]:
    """Two documents of one message with the same business key."""
    if len(docs) < 2:
        return []
    first: dict[tuple[str, ...], FiledDocument] = {}
    findings = []
    for doc in docs:
        prior = first.setdefault(doc.key, doc)
        if prior is not doc:
            name = doc.mtype.key[-1]
            findings.append(_finding(
                doc, doc.head, name,
                f"this message files the same {doc.mtype.title} twice: documents {prior.index} and {doc.index} "
                f"share the key {', '.join(doc.key_names)}",
                doc.mtype.duplicate_code,
            ))
    return findings
