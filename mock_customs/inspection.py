"""The inspection stand-in (检验检疫): screens declaration-list lines against a table of goods.

Every line of a list (621) is matched on its HS code prefix and on keywords in its goods name
against ``tables/inspection.toml`` (``tables_dir`` overrides the folder). The verdict on the list
is a CEB622 receipt, matched by the window to the list by the list head's ``guid``:

- nothing hits → ``399`` "inspection: cleared";
- a restricted entry hits → ``500`` "inspection: held for inspection: line N gcode … reason", then,
  ``inspection_delay`` seconds later, a second 622 with ``399`` "inspection: passed after inspection"
  (the stand-in always passes what it inspects);
- a prohibited entry hits → ``100`` with ``returnInfo`` beginning ``-621501`` (ours: an inspection
  refusal has no official code, so it takes one in the list family, ``-6215xx`` being unused) and
  naming the line, its gcode and goods name, and the reason.

A prohibited hit wins over restricted ones. A list withdrawn (appType 3) is not screened. The
receipt carries no pre-entry number of its own (inspection does not assign one): ``preNo`` is the
filed one when the head has it, else 18 zeros, as ``document_fields`` fills it.

Export lists (603) are screened against the table's ``[export]`` entries, which may also narrow on
the line's destination ``country`` and the list's producer ``ownerCode``; the verdict is a CEB604:

- nothing hits → ``399`` "inspection: cleared";
- a prohibited entry hits → ``100`` with ``-621502`` (ours, as ``-621501`` on import);
- a restricted entry hits → ``120`` "inspection: to be inspected on site …": the goods are looked at
  where they are, so when an arrival (507) names the list's waybill (logisticsCode, logisticsNo),
  inspection answers ``500`` "held for inspection on site", and ``inspection_delay`` later ``399``
  "passed after inspection on site". A part of a split 507 is enough: the parcels it names are there.
"""

from __future__ import annotations

import functools
import logging
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.catalog import EXPORT, FILED
from schemas.receipts import DocumentReturn, document_fields, receipt_xml

from .base import Regulator
from .documents import Delivered
from .export_wire import export_return, waybill_key

log = logging.getLogger("swx.mock.inspection")

TABLES_DIR = Path(__file__).resolve().parent / "tables"
LIST = FILED["621"]
X_LIST, X_ARRIVAL = EXPORT["603"], EXPORT["507"]

CLEARED, HELD, REFUSED, ON_FILE = "399", "500", "100", "120"
PROHIBITED_CODE = "-621501"  # ours: goods barred from retail import by inspection
EXPORT_PROHIBITED_CODE = "-621502"  # ours: goods barred from export by inspection


@dataclass(frozen=True, slots=True)
class Entry:
    """One table entry: code prefixes and/or goods-name keywords, and why they matter."""

    level: str  # "prohibited" | "restricted"
    prefixes: tuple[str, ...]
    keywords: tuple[str, ...]  # lower-cased
    reason: str
    countries: tuple[str, ...] = ()  # export: only for these destinations
    owners: tuple[str, ...] = ()  # export: only for these producers (ownerCode)

    def match(self, gcode: str, gname: str, country: str = "", owner: str = "") -> str | None:
        """What hit (the prefix or the keyword), or None."""
        if (self.countries and country not in self.countries) or (self.owners and owner not in self.owners):
            return None
        for prefix in self.prefixes:
            if gcode.startswith(prefix):
                return prefix
        name = gname.lower()
        return next((k for k in self.keywords if k in name), None)


@dataclass(frozen=True, slots=True)
class Hit:
    gnum: str
    gcode: str
    gname: str
    level: str
    matched: str
    reason: str

    def describe(self) -> str:
        return f"line {self.gnum} gcode {self.gcode} ({self.gname}): {self.reason}"


@dataclass(frozen=True, slots=True)
class Screening:
    hits: tuple[Hit, ...]

    @property
    def prohibited(self) -> tuple[Hit, ...]:
        return tuple(h for h in self.hits if h.level == "prohibited")

    @property
    def restricted(self) -> tuple[Hit, ...]:
        return tuple(h for h in self.hits if h.level == "restricted")

    @property
    def decision(self) -> str:
        return "prohibited" if self.prohibited else "restricted" if self.restricted else "clear"

    def verdict(self) -> tuple[str, str]:
        """(returnStatus, returnInfo) of the first receipt."""
        if self.prohibited:
            return REFUSED, f"{PROHIBITED_CODE} inspection: prohibited goods: " + "; ".join(
                h.describe() for h in self.prohibited)
        if self.restricted:
            return HELD, "inspection: held for inspection: " + "; ".join(h.describe() for h in self.restricted)
        return CLEARED, "inspection: cleared"


def parse_table(data: Mapping[str, Any]) -> tuple[Entry, ...]:
    """Entries from the parsed TOML; prohibited ones first, so they are reported before restricted ones."""
    entries = []
    for level in ("prohibited", "restricted"):
        for item in data.get(level, []):
            prefixes = tuple(p.replace(".", "").strip() for p in item.get("prefixes", []) if p.strip())
            keywords = tuple(k.lower() for k in item.get("keywords", []) if k.strip())
            if not prefixes and not keywords:
                raise ValueError(f"an inspection entry ({level}) needs prefixes or keywords")
            entries.append(Entry(level, prefixes, keywords, item.get("reason") or level,
                                 tuple(item.get("countries", [])), tuple(item.get("owners", []))))
    return tuple(entries)


def load_table(path: Path | None = None, *, direction: str = "import") -> tuple[Entry, ...]:
    with open(path or TABLES_DIR / "inspection.toml", "rb") as f:
        data = tomllib.load(f)
    return parse_table(data.get("export", {}) if direction == "export" else data)


def screen(lines: Sequence[Mapping[str, str]], table: Sequence[Entry], owner: str = "") -> Screening:
    """Every hit on every line; a line hitting several entries of one level reports the first."""
    hits = []
    for line in lines:
        gcode, gname = line.get("gcode", ""), line.get("gname", "")
        for level in ("prohibited", "restricted"):
            for entry in (e for e in table if e.level == level):
                matched = entry.match(gcode, gname, line.get("country", ""), owner)
                if matched:
                    hits.append(Hit(str(line.get("gnum", "")), gcode, gname, level, matched, entry.reason))
                    break
    return Screening(tuple(hits))


def inspection_receipt(returns: Sequence[tuple[Mapping[str, str], str, str]]) -> str:
    """A CEB622 with one ``InventoryReturn`` per (list head, status, info)."""
    return receipt_xml(LIST, [
        DocumentReturn(document_fields(LIST, head, _pre_no(head)), status, info) for head, status, info in returns
    ])


def _pre_no(head: Mapping[str, str]) -> str | None:
    pre_no = head.get("preNo") or ""
    return pre_no if len(pre_no) == 18 else None


class Inspection(Regulator):
    """Screens lists and answers with 622 receipts; see the module docstring."""

    name = "inspection"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        tables = getattr(ctx.settings, "tables_dir", None)
        path = Path(tables) / "inspection.toml" if tables else None
        self.table = load_table(path)
        self.export_table = load_table(path, direction="export")
        self.on_site: dict[tuple[str, str], tuple[dict[str, str], str]] = {}  # waybill -> (603 head, what to inspect)
        self.counts = {"clear": 0, "restricted": 0, "prohibited": 0, "released": 0}
        self.decisions: list[dict[str, str]] = []

    async def on_message(self, msg: Delivered) -> None:
        if msg.code == X_LIST.code:
            await self._export_list(msg)
            return
        if msg.code == X_ARRIVAL.code:
            await self._arrival(msg)
            return
        if msg.code != "621":
            return
        now: list[tuple[Mapping[str, str], str, str]] = []
        held: list[Mapping[str, str]] = []
        for doc in msg.docs:
            if doc.head.get("appType") == "3":
                continue
            result = screen(doc.lines, self.table)
            status, info = result.verdict()
            self.counts[result.decision] += 1
            self.decisions.append({"guid": doc.head.get("guid", ""), "orderNo": doc.head.get("orderNo", ""),
                                   "decision": result.decision, "returnStatus": status, "returnInfo": info})
            now.append((doc.head, status, info))
            if status == HELD:
                held.append(doc.head)
        del self.decisions[:-500]  # keep the recent ones only
        if now:
            await self.ctx.send_receipt(inspection_receipt(now))
        if held:
            self.ctx.later(float(self.ctx.settings.inspection_delay), functools.partial(self._release, held))

    async def _release(self, heads: list[Mapping[str, str]]) -> None:
        """The second verdict on held lists: inspected and passed."""
        self.counts["released"] += len(heads)
        await self.ctx.send_receipt(inspection_receipt([(h, CLEARED, "inspection: passed after inspection")
                                                        for h in heads]))

    # -- export --
    async def _export_list(self, msg: Delivered) -> None:
        returns = []
        for doc in msg.docs:
            h = doc.head
            if h.get("appType") == "3":
                continue
            result = screen(doc.lines, self.export_table, h.get("ownerCode", ""))
            self.counts[result.decision] += 1
            if result.prohibited:
                status, info = REFUSED, f"{EXPORT_PROHIBITED_CODE} inspection: export prohibited: " + "; ".join(
                    hit.describe() for hit in result.prohibited)
            elif result.restricted:
                what = "; ".join(hit.describe() for hit in result.restricted)
                self.on_site[waybill_key(h)] = (dict(h), what)
                status, info = ON_FILE, f"inspection: to be inspected on site when the parcel arrives: {what}"
            else:
                status, info = CLEARED, "inspection: cleared"
            self.decisions.append({"guid": h.get("guid", ""), "orderNo": h.get("orderNo", ""), "decision": result.decision,
                                   "returnStatus": status, "returnInfo": info})
            returns.append(export_return(X_LIST, h, status, info))
        del self.decisions[:-500]
        if returns:
            await self.ctx.send_receipt(receipt_xml(X_LIST, returns))

    async def _arrival(self, msg: Delivered) -> None:
        """Goods on site: the held lists among the arrived waybills are inspected (500), then passed."""
        held = []
        for doc in msg.docs:
            code = doc.head.get("logisticsCode", "")
            for line in doc.lines:
                found = self.on_site.pop((code, line.get("logisticsNo", "")), None)
                if found is not None:
                    held.append(found)
        if not held:
            return
        await self.ctx.send_receipt(receipt_xml(X_LIST, [
            export_return(X_LIST, h, HELD, f"inspection: held for inspection on site: {what}") for h, what in held]))
        self.ctx.later(float(self.ctx.settings.inspection_delay), functools.partial(self._export_release, held))

    async def _export_release(self, held: list[tuple[dict[str, str], str]]) -> None:
        self.counts["released"] += len(held)
        await self.ctx.send_receipt(receipt_xml(X_LIST, [
            export_return(X_LIST, h, CLEARED, "inspection: passed after inspection on site") for h, _ in held]))

    def state(self) -> dict:
        return {"counts": dict(self.counts), "decisions": self.decisions[-100:],
                "exportOnSite": [{"logisticsCode": k[0], "logisticsNo": k[1], "orderNo": h.get("orderNo"), "what": what}
                                 for k, (h, what) in self.on_site.items()]}
