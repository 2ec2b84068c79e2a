"""The tax stand-in (税务): assesses each declaration list and sends the guarantor a CEB816 tax bill.

What it does, and the choices behind it:

- It receives declaration lists (621) and computes the tax per CEB.md §4 from a rate table by HS
  heading (``tables/tax_rates.toml``): VAT 13 % by default (9 % for printed matter), consumption tax
  for high-end cosmetics, jewellery, high-end watches, wine, spirits and golf equipment.
- Only the per-transaction limit is applied here (``per_transaction_limit``): the annual limit is
  per buyer across every list, which is customs' business — customs refuses a list over it, and a
  list customs refuses is never taxed. The value compared with the limit is the order's
  ``acturalPaid`` when the window shows the order (the figure customs counts, CEB.md §4), else the
  list's tax base.
- Within the limit: tariff 0, VAT and consumption tax at 70 % (``RETAIL_FACTOR``), so the total is
  the builder's ``retail_tax``. Beyond it: full tax — tariff from the table, then consumption tax
  and VAT on the tariff-inclusive value (consumption tax is levied on a tax-inclusive price:
  ``(value + tariff) / (1 − c) × c``; VAT on value + tariff + consumption tax).
- Base = goods value (Σ line ``totalPrice``) + freight + insured fee; freight and fee are shared
  across lines in proportion to line value. Amounts are rounded to cents, half up: the bill's total
  is the raw total rounded once (as ``retail_tax`` does), tariff and consumption tax are rounded on
  their own and VAT takes the remainder; line amounts are apportioned so that they add up to the
  head's exactly.
- Customs numbers the list (``invtNo``); the bill needs that number, so the regulator polls the
  window's view of the declaration until it appears, the list is refused, or ``tax_wait`` passes.
- The list itself carries no ``taxTotal`` (the XSD has none), and tax is not sent orders: the
  declared tax is read from the window's view, ``documents.order.amounts.taxTotal`` (also directly,
  or under ``head`` or ``fields``), when the view carries it, or from a ``taxTotal`` on the list head. When it falls
  short of the assessed total the bill's ``note`` says so and ``state()`` flags it. Likewise the
  order's ``acturalPaid`` is read from the view for the limit when present.
- ``taxNo`` is the ``invtNo`` followed by a two-digit bill sequence (``…01``, ``…02`` after a change).

Export (出口退税) is a ledger, not a bill: B export lists (603), customs' summary results (792) and
departures (509) feed ``refunds.RefundLedger``, one per stand-in, kept per seller; it is served in
``GET /_admin/state`` (``exportRefunds``) and per seller by ``GET /refunds/{ebcCode}`` (operator).
Export sends no receipt: the refund is the seller's claim, outside the CEB flow.
"""

from __future__ import annotations

import asyncio
import logging
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends
from lxml import etree

from schemas.builder import RETAIL_FACTOR, VAT_RATE, money
from schemas.catalog import CEB_NS
from schemas.receipts import new_guid, return_time

from .base import Regulator
from .documents import Delivered
from .refunds import RefundLedger

log = logging.getLogger("swx.mock.tax")

TABLES_DIR = Path(__file__).resolve().parent / "tables"
_CENT = Decimal("0.01")
_ZERO = Decimal(0)
# JGS-20 legal units measuring mass or volume, in grams (millilitres) per unit.
_GRAMS_PER_UNIT = {"035": Decimal(1000), "036": Decimal(1), "070": Decimal(1_000_000),
                   "095": Decimal(1000), "096": Decimal(1)}
POLL_INTERVAL = 0.2  # first wait between looks at the window; grows by half each time ...
POLL_MAX = 2.0  # ... up to this, so that a busy window is not asked a thousand times a second


# --- the rate table -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsumptionRule:
    headings: tuple[str, ...]
    rate: Decimal
    what: str = ""
    min_price_per_g: Decimal | None = None  # high-end threshold per gram / millilitre
    min_price_per_piece: Decimal | None = None  # … per piece

    def applies(self, line: Mapping[str, str]) -> bool:
        """Whether a line matching the heading is priced high enough to carry the tax."""
        total = _dec(line.get("totalPrice"))
        grams = _GRAMS_PER_UNIT.get(line.get("unit1", ""))
        qty1, qty = _dec(line.get("qty1")), _dec(line.get("qty"))
        if grams is not None and self.min_price_per_g is not None:
            amount = qty1 * grams
            return amount > 0 and total / amount >= self.min_price_per_g
        if self.min_price_per_piece is not None:
            pieces = qty1 if grams is None else qty  # a count legal unit, else the trade units
            return pieces > 0 and total / pieces >= self.min_price_per_piece
        return True


@dataclass(frozen=True, slots=True)
class TaxRates:
    vat_default: Decimal = VAT_RATE
    vat: Mapping[str, Decimal] = field(default_factory=dict)
    tariff_default: Decimal = _ZERO
    tariff: Mapping[str, Decimal] = field(default_factory=dict)
    consumption: tuple[ConsumptionRule, ...] = ()

    def vat_rate(self, gcode: str) -> Decimal:
        return _longest(self.vat, gcode, self.vat_default)

    def tariff_rate(self, gcode: str) -> Decimal:
        return _longest(self.tariff, gcode, self.tariff_default)

    def consumption_rate(self, line: Mapping[str, str]) -> Decimal:
        gcode = line.get("gcode", "")
        best: tuple[int, ConsumptionRule] | None = None
        for rule in self.consumption:
            for heading in rule.headings:
                if gcode.startswith(heading) and (best is None or len(heading) > best[0]):
                    best = (len(heading), rule)
        return best[1].rate if best and best[1].applies(line) else _ZERO


def _prefix(code: str) -> str:
    return code.replace(".", "").strip()


def _longest(table: Mapping[str, Decimal], gcode: str, default: Decimal) -> Decimal:
    hits = [p for p in table if gcode.startswith(p)]
    return table[max(hits, key=len)] if hits else default


def parse_rates(data: Mapping[str, Any]) -> TaxRates:
    """A ``TaxRates`` from the parsed TOML (see ``tables/tax_rates.toml``)."""
    vat, tariff = data.get("vat", {}), data.get("tariff", {})
    return TaxRates(
        vat_default=Decimal(str(vat.get("default", VAT_RATE))),
        vat={_prefix(k): Decimal(str(v)) for k, v in vat.get("headings", {}).items()},
        tariff_default=Decimal(str(tariff.get("default", 0))),
        tariff={_prefix(k): Decimal(str(v)) for k, v in tariff.get("headings", {}).items()},
        consumption=tuple(
            ConsumptionRule(
                headings=tuple(_prefix(h) for h in rule["headings"]),
                rate=Decimal(str(rule["rate"])),
                what=rule.get("what", ""),
                min_price_per_g=Decimal(str(rule["min_price_per_g"])) if "min_price_per_g" in rule else None,
                min_price_per_piece=Decimal(str(rule["min_price_per_piece"])) if "min_price_per_piece" in rule else None,
            )
            for rule in data.get("consumption", [])
        ),
    )


def load_rates(path: Path | None = None) -> TaxRates:
    with open(path or TABLES_DIR / "tax_rates.toml", "rb") as f:
        return parse_rates(tomllib.load(f))


# --- the assessment -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineTax:
    gnum: str
    gcode: str
    tax_price: Decimal  # the line's dutiable value: its goods value plus its share of freight and fee
    customs_tax: Decimal
    value_added_tax: Decimal
    consumption_tax: Decimal
    tariff_rate: Decimal  # the rates applied (tariff 0 within the limit)
    vat_rate: Decimal
    consumption_rate: Decimal


@dataclass(frozen=True, slots=True)
class Assessment:
    lines: tuple[LineTax, ...]
    base: Decimal  # goods + freight + insured fee
    order_value: Decimal  # the value compared with the per-transaction limit
    within_limit: bool
    customs_tax: Decimal
    value_added_tax: Decimal
    consumption_tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.customs_tax + self.value_added_tax + self.consumption_tax


def _dec(value: object) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else _ZERO
    except InvalidOperation:
        return _ZERO


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, ROUND_HALF_UP)


def _apportion(total: Decimal, raw: Sequence[Decimal]) -> list[Decimal]:
    """Split ``total`` over lines in proportion to their raw amounts (largest remainder first), so
    that the rounded line amounts add up to the head's exactly."""
    n = len(raw)
    floors = [r.quantize(_CENT, ROUND_DOWN) for r in raw]
    cents = int((total - sum(floors, _ZERO)) / _CENT)
    by_remainder = sorted(range(n), key=lambda i: raw[i] - floors[i], reverse=True)
    for k in range(max(cents, 0)):
        floors[by_remainder[k % n]] += _CENT
    for _ in range(max(-cents, 0)):  # rounding took the total below the floors: give back a cent
        givers = [i for i in reversed(by_remainder) if floors[i] > 0]
        if not givers:
            break
        floors[givers[0]] -= _CENT
    return floors


def assess(head: Mapping[str, str], lines: Sequence[Mapping[str, str]], rates: TaxRates,
           per_transaction_limit: Decimal, *, order_value: Decimal | None = None) -> Assessment:
    """The tax on one declaration list (CEB.md §4); see the module docstring for the rules."""
    values = [_dec(line.get("totalPrice")) for line in lines]
    goods = sum(values, _ZERO)
    base = goods + _dec(head.get("freight")) + _dec(head.get("insuredFee"))
    value = base if order_value is None else order_value
    within = value <= per_transaction_limit
    factor = RETAIL_FACTOR if within else Decimal(1)

    raw_price, raw_tariff, raw_ct, raw_vat, rated = [], [], [], [], []
    # The head's amounts are Σ(value × rate) × base / goods, the same sequence of operations as
    # builder.retail_tax, so that an in-limit list gives exactly its figure; the lines' raw amounts
    # (each line's share of the base × its rates) are then apportioned to match the head.
    w_all = w_tariff = w_ct = _ZERO
    for line, line_value in zip(lines, values):
        gcode = line.get("gcode", "")
        t = _ZERO if within else rates.tariff_rate(gcode)
        v, c = rates.vat_rate(gcode), rates.consumption_rate(line)
        combined = (c + v) / (1 - c) * factor  # VAT + consumption per unit of tariff-inclusive value
        rated.append((gcode, t, v, c))
        weight = line_value if goods else Decimal(1)
        w_all += weight * (combined if within else t + (1 + t) * combined)
        w_tariff += weight * t
        w_ct += weight * (1 + t) * (c / (1 - c) * factor)
        share = line_value * base / goods if goods else base / len(lines)
        raw_price.append(share)
        raw_tariff.append(share * t)
        raw_ct.append(share * (1 + t) * c / (1 - c) * factor)
        raw_vat.append(share * (1 + t) * v / (1 - c) * factor)

    def spread(weighted: Decimal) -> Decimal:  # weighted × base / goods, rounded as retail_tax does
        return _cents(weighted * base / goods if goods else weighted * base / max(len(lines), 1))

    total = spread(w_all)
    customs_tax, consumption_tax = spread(w_tariff), spread(w_ct)
    vat = total - customs_tax - consumption_tax
    if vat < 0:  # only with a zero VAT rate and unlucky rounding
        vat = _ZERO
    prices = _apportion(base.quantize(_CENT, ROUND_HALF_UP), raw_price)
    tariffs, cts, vats = _apportion(customs_tax, raw_tariff), _apportion(consumption_tax, raw_ct), _apportion(vat, raw_vat)
    out = tuple(
        LineTax(str(line.get("gnum", i + 1)), gcode, prices[i], tariffs[i], vats[i], cts[i], t, v, c)
        for i, (line, (gcode, t, v, c)) in enumerate(zip(lines, rated))
    )
    return Assessment(out, base, value, within, customs_tax, vat, consumption_tax)


def shortfall_note(declared: Decimal | None, assessment: Assessment) -> str | None:
    """The bill's note when the declared tax falls short of the assessed total, else None."""
    if declared is None or declared >= assessment.total:
        return None
    return f"taxTotal short: declared {money(declared)}, assessed {money(assessment.total)}"


# --- the CEB816 tax bill ------------------------------------------------------------------


def _el(parent: etree._Element, name: str, text: str | None) -> None:
    if text:
        etree.SubElement(parent, f"{{{CEB_NS}}}{name}").text = text


def tax_bill_xml(head: Mapping[str, str], lines: Sequence[Mapping[str, str]], assessment: Assessment, *,
                 tax_no: str | None = None, note: str | None = None, guid: str | None = None,
                 now: Any = None) -> bytes:
    """A ``CEB816Message`` with one ``Tax`` (head + one ``TaxListRd`` per line) for one list.

    ``head`` is the list head with ``invtNo`` as customs numbered it. Elements are in ceb-tax.xsd
    order; optional party codes are copied from the list head when present.
    """
    invt_no = head.get("invtNo")
    if not invt_no:
        raise ValueError("a tax bill needs the list's invtNo")
    if len(lines) != len(assessment.lines):
        raise ValueError("the assessment does not cover the list's lines")
    ceb = f"{{{CEB_NS}}}"
    root = etree.Element(ceb + "CEB816Message", nsmap={"ceb": CEB_NS}, guid=guid or new_guid(), version="1.0")
    tax = etree.SubElement(root, ceb + "Tax")
    rd = etree.SubElement(tax, ceb + "TaxHeadRd")
    _el(rd, "guid", new_guid())
    _el(rd, "returnTime", return_time(now))
    _el(rd, "invtNo", invt_no)
    _el(rd, "taxNo", (tax_no or f"{invt_no}01")[:50])
    _el(rd, "customsTax", money(assessment.customs_tax))
    _el(rd, "valueAddedTax", money(assessment.value_added_tax))
    _el(rd, "consumptionTax", money(assessment.consumption_tax))
    _el(rd, "status", "1")  # generated
    _el(rd, "note", note[:1000] if note else None)
    _el(rd, "assureCode", (head.get("assureCode") or "")[:64])
    _el(rd, "ebcCode", (head.get("ebcCode") or "")[:64])
    _el(rd, "logisticsCode", (head.get("logisticsCode") or "")[:64])
    _el(rd, "agentCode", (head.get("agentCode") or "")[:18])
    customs = head.get("customsCode") or ""
    _el(rd, "customsCode", customs if len(customs) == 4 else None)
    for line, lt in zip(lines, assessment.lines):
        node = etree.SubElement(tax, ceb + "TaxListRd")
        _el(node, "gnum", str(line.get("gnum") or lt.gnum))
        _el(node, "gcode", line.get("gcode") or lt.gcode)
        _el(node, "taxPrice", money(lt.tax_price))
        _el(node, "customsTax", money(lt.customs_tax))
        _el(node, "valueAddedTax", money(lt.value_added_tax))
        _el(node, "consumptionTax", money(lt.consumption_tax))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --- reading the window's view of a declaration ---------------------------------------------


def _section(view: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    docs = view.get("documents") if isinstance(view, Mapping) else None
    part = docs.get(kind) if isinstance(docs, Mapping) else None
    return part if isinstance(part, Mapping) else {}


def _field(section: Mapping[str, Any], name: str) -> Any:
    """A field of a document in the view: at its top level, or under ``amounts`` (where the window
    shows the order's figures), ``head`` or ``fields``."""
    if section.get(name) not in (None, ""):
        return section[name]
    for sub in ("amounts", "head", "fields"):
        inner = section.get(sub)
        if isinstance(inner, Mapping) and inner.get(name) not in (None, ""):
            return inner[name]
    return None


def refused(view: Mapping[str, Any]) -> bool:
    """Whether the window shows the declaration (or its list) as refused."""
    inventory = _section(view, "inventory")
    states = {view.get("state"), inventory.get("state"), inventory.get("status")}
    return bool(states & {"rejected", "refused", "100"})


def _optional_dec(value: Any) -> Decimal | None:
    return None if value in (None, "") else _dec(value)


# --- the regulator ------------------------------------------------------------------------


@dataclass
class _Bill:
    order_no: str
    invt_no: str
    tax_no: str
    total: str
    declared: str | None
    short: bool
    within_limit: bool


class Tax(Regulator):
    """Assesses each list customs numbers and sends its tax bill; see the module docstring."""

    name = "tax"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        settings = ctx.settings
        tables = getattr(settings, "tables_dir", None)
        self.rates = load_rates(Path(tables) / "tax_rates.toml" if tables else None)
        self.bills: list[_Bill] = []
        self.pending: set[str] = set()  # list guids waiting for their invtNo
        self.abandoned: list[dict[str, str]] = []  # gave up waiting, or customs refused the list
        self._sequence: dict[str, int] = {}  # invtNo → bills issued
        self.refunds = RefundLedger()  # export: see refunds.py

    async def on_message(self, msg: Delivered) -> None:
        export = {"603": self.refunds.take_list, "509": self.refunds.take_departure, "792": self.refunds.take_result}
        if msg.code in export:
            for doc in msg.docs:
                export[msg.code](doc.head, doc.lines)
            return
        if msg.code != "621":
            return
        for doc in msg.docs:
            if doc.head.get("appType") == "3":  # a withdrawn list is not taxed
                continue
            self.pending.add(doc.head.get("guid", ""))
            self.ctx.spawn(self._bill(dict(doc.head), [dict(line) for line in doc.lines]))

    async def _wait_for_list(self, head: Mapping[str, str]) -> tuple[str | None, Mapping[str, Any]]:
        """Poll the window until customs has numbered the list: (invtNo, view), or (None, view)
        when it refused the list or ``tax_wait`` passed."""
        path = f"/v1/declarations/{quote(head.get('ebpCode', ''), safe='')}/{quote(head.get('orderNo', ''), safe='')}"
        deadline = time.monotonic() + float(self.ctx.settings.tax_wait)
        view: Mapping[str, Any] = {}
        pause = POLL_INTERVAL
        while True:
            await asyncio.sleep(pause)  # customs numbers a list no sooner than it can match it
            pause = min(pause * 1.5, POLL_MAX)
            try:
                response = await self.ctx.gateway_get(path)
                if response.status_code == 200:
                    view = response.json()
                    if refused(view):
                        return None, view
                    invt_no = _field(_section(view, "inventory"), "invtNo")
                    if invt_no:
                        return str(invt_no), view
            except (httpx.HTTPError, ValueError) as exc:  # the window may be restarting: keep polling till the deadline
                log.debug("tax: polling %s failed: %s", path, exc)
            if time.monotonic() >= deadline:
                return None, view

    async def _bill(self, head: dict[str, str], lines: list[dict[str, str]]) -> None:
        guid, order_no = head.get("guid", ""), head.get("orderNo", "")
        try:
            invt_no, view = await self._wait_for_list(head)
            if invt_no is None:
                why = "refused by customs" if refused(view) else f"no invtNo within {self.ctx.settings.tax_wait} s"
                log.info("tax: list %s (order %s) not taxed: %s", guid, order_no, why)
                self.abandoned.append({"guid": guid, "orderNo": order_no, "reason": why})
                return
            order = _section(view, "order")
            declared = _optional_dec(head.get("taxTotal") or _field(order, "taxTotal"))
            assessment = assess(head, lines, self.rates, Decimal(str(self.ctx.settings.per_transaction_limit)),
                                order_value=_optional_dec(_field(order, "acturalPaid")))
            seq = self._sequence.get(invt_no, 0) + 1
            self._sequence[invt_no] = seq
            tax_no = f"{invt_no}{seq:02d}"
            short = shortfall_note(declared, assessment)
            note = short or (None if assessment.within_limit else "over the per-transaction limit: full tax")
            xml = tax_bill_xml(dict(head, invtNo=invt_no), lines, assessment, tax_no=tax_no, note=note)
            self.bills.append(_Bill(order_no, invt_no, tax_no, money(assessment.total),
                                    money(declared) if declared is not None else None,
                                    short is not None, assessment.within_limit))
            if short:
                log.warning("tax: list %s (invtNo %s): %s", guid, invt_no, short)
            await self.ctx.send_receipt(xml)
        except Exception:  # a spawned task: say what went wrong rather than lose it
            log.exception("tax: billing list %s (order %s) failed", guid, order_no)
        finally:
            self.pending.discard(guid)

    def state(self) -> dict:
        return {
            "bills": [vars(b) for b in self.bills[-200:]],
            "billCount": len(self.bills),
            "short": [b.invt_no for b in self.bills if b.short],
            "pending": len(self.pending),
            "abandoned": self.abandoned[-200:],
            "exportRefunds": self.refunds.state(),
        }

    def router(self) -> APIRouter:
        router = APIRouter(dependencies=[Depends(self.ctx.require_operator)])

        @router.get("/refunds/{ebcCode}", summary="A seller's export-refund ledger (operator)")
        async def refunds(ebcCode: str) -> dict:
            return self.refunds.for_seller(ebcCode)

        return router
