"""The counts behind ``GET /v1/stats``: filings, documents, declarations, and why things were refused.

Counting is done in the database (GROUP BY) wherever the figure is a plain count; rejection reasons,
which live inside JSON and free text, are ranked in Python over the period's rows.
"""

from __future__ import annotations

import collections
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.catalog import FILED, SUMMARY_RESULT_CODE

from ..models import Document, Message, Rejection
from ..routing.models import Verdict

# A declaration's state from its list: customs' status, unless inspection holds or refused it.
LIST_STATES = {"800": "released", "899": "released", "100": "rejected", "300": "review", "500": "inspection"}
MAX_REASON_ROWS = 200_000  # rejections read to rank their codes; the ranking says when it stopped short


def period(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """[start 00:00, end+1 00:00) in UTC; either end open."""
    lo = datetime.combine(start, time.min, tzinfo=timezone.utc) if start else None
    hi = datetime.combine(end + timedelta(days=1), time.min, tzinfo=timezone.utc) if end else None
    return lo, hi


def _within(column: Any, lo: datetime | None, hi: datetime | None) -> list[Any]:
    return [c for c in ((column >= lo) if lo else None, (column < hi) if hi else None) if c is not None]


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


async def filings(session: AsyncSession, lo: datetime | None, hi: datetime | None, top: int) -> dict:
    by_type: dict[str, dict[str, int]] = collections.defaultdict(lambda: {"accepted": 0, "rejected": 0})
    by_day: dict[str, dict[str, int]] = collections.defaultdict(lambda: {"accepted": 0, "rejected": 0})
    by_firm: dict[str, dict[str, int]] = collections.defaultdict(lambda: {"accepted": 0, "rejected": 0})
    for table, outcome in ((Message, "accepted"), (Rejection, "rejected")):
        where = _within(table.received_at, lo, hi)
        day = func.date(table.received_at)
        for mtype, n in await session.execute(select(table.message_type, func.count()).where(*where).group_by(table.message_type)):
            by_type[mtype or "unreadable"][outcome] += n
        for d, n in await session.execute(select(day, func.count()).where(*where).group_by(day)):
            by_day[_day(d)][outcome] += n
        for code, n in await session.execute(select(table.sender_code, func.count()).where(*where).group_by(table.sender_code)):
            by_firm[code][outcome] += n
    by_direction: dict[str, dict[str, int]] = collections.defaultdict(lambda: {"accepted": 0, "rejected": 0})
    for mtype, counts in by_type.items():
        known = FILED.get(mtype)
        direction = known.direction if known else "export" if mtype == SUMMARY_RESULT_CODE else "unknown"
        for outcome, n in counts.items():
            by_direction[direction][outcome] += n
    accepted = sum(v["accepted"] for v in by_type.values())
    rejected = sum(v["rejected"] for v in by_type.values())
    firms = sorted(by_firm.items(), key=lambda kv: (-(kv[1]["accepted"] + kv[1]["rejected"]), kv[0]))[:top]
    return {
        "total": accepted + rejected, "accepted": accepted, "rejected": rejected,
        "byType": dict(sorted(by_type.items())),
        "byDirection": dict(sorted(by_direction.items())),
        "byDay": [{"day": d, **v} for d, v in sorted(by_day.items())],
        "byEnterprise": [{"code": c, **v} for c, v in firms],
    }


async def documents(session: AsyncSession, lo: datetime | None, hi: datetime | None) -> dict:
    out: dict[str, dict[str, int]] = collections.defaultdict(dict)
    query = select(Document.kind, Document.status, func.count()).where(*_within(Document.created_at, lo, hi))
    for kind, status, n in await session.execute(query.group_by(Document.kind, Document.status)):
        out[kind][status] = n
    return {kind: dict(sorted(v.items())) for kind, v in sorted(out.items())}


async def declarations(session: AsyncSession, lo: datetime | None, hi: datetime | None) -> dict:
    """Declarations (orders) by state, judged from their list: the same rules as the declaration view."""
    where = _within(Document.created_at, lo, hi)
    orders = await session.scalar(select(func.count()).select_from(Document).where(Document.kind == "order", *where)) or 0
    inspection = (
        select(Verdict.document_id, Verdict.status).where(Verdict.regulator == "inspection").subquery()
    )
    rows = await session.execute(
        select(Document.status, inspection.c.status, func.count())
        .select_from(Document)
        .outerjoin(inspection, inspection.c.document_id == Document.id)
        .where(Document.kind == "inventory", *where)
        .group_by(Document.status, inspection.c.status)
    )
    states: collections.Counter[str] = collections.Counter()
    for customs, held, n in rows:
        if customs == "100" or held == "100":
            states["rejected"] += n
        elif held == "500":
            states["inspection"] += n
        else:
            states[LIST_STATES.get(customs, "waiting")] += n
    cancelled = await session.scalar(
        select(func.count()).select_from(Document).where(Document.kind == "cancel", Document.status.in_(("399", "800")), *where)
    ) or 0
    if cancelled:
        states["cancelled"] += cancelled
        states["released"] = max(0, states["released"] - cancelled)
    listed = sum(states.values()) - cancelled
    states["waiting"] += max(0, orders - listed)  # orders whose list has not come
    return {"total": max(orders, listed), "byState": {k: states[k] for k in sorted(states) if states[k]}}


EXPORT_LIST_STATES = {"800": "released", "899": "departed", "100": "rejected", "300": "review", "500": "inspection"}


async def lists_by_trade_mode(session: AsyncSession, lo: datetime | None, hi: datetime | None) -> dict:
    """Declaration lists by direction, trade mode (9610, 1210, 9710, 9810 …) and state; export lists
    cancelled (605 concluded) or with goods taken back (213 released) are counted as such."""
    where = _within(Document.created_at, lo, hi)
    mode = Document.links["tradeMode"].as_string()
    out: dict[str, dict[str, collections.Counter[str]]] = {"import": {}, "export": {}}
    rows = await session.execute(
        select(Document.kind, mode, Document.status, func.count())
        .where(Document.kind.in_(("inventory", "export_inventory")), *where).group_by(Document.kind, mode, Document.status)
    )
    for kind, trade_mode, status, n in rows:
        direction, states = ("export", EXPORT_LIST_STATES) if kind == "export_inventory" else ("import", LIST_STATES)
        out[direction].setdefault(trade_mode or "unknown", collections.Counter())[states.get(status, "waiting")] += n
    ended = await session.execute(
        select(Document.kind, func.count()).where(
            ((Document.kind == "export_cancel") & (Document.status == "399"))
            | ((Document.kind == "export_refund") & (Document.status == "800")), *where,
        ).group_by(Document.kind)
    )
    totals = {direction: {m: dict(sorted(c.items())) for m, c in sorted(modes.items())} for direction, modes in out.items()}
    for kind, n in ended:
        totals["export"].setdefault("all", {})["cancelled" if kind == "export_cancel" else "returned"] = n
    return totals


def _code_of(text: str) -> str:
    head = (text or "").split(" ", 1)[0]
    return head if head.startswith("-") or head[:1].isdigit() else "(no code)"


async def reasons(session: AsyncSession, lo: datetime | None, hi: datetime | None, top: int) -> dict:
    intake: collections.Counter[tuple[str, str]] = collections.Counter()
    examples: dict[tuple[str, str], str] = {}
    rows = await session.stream(
        select(Rejection.findings).where(*_within(Rejection.received_at, lo, hi)).limit(MAX_REASON_ROWS)
    )
    seen = 0
    async for (findings,) in rows:
        seen += 1
        if findings:
            first = findings[0]
            key = (first.get("layer", "?"), first.get("code", "?"))
            intake[key] += 1
            examples.setdefault(key, first.get("message", "")[:300])
    verdicts: collections.Counter[tuple[str, str]] = collections.Counter()
    vexamples: dict[tuple[str, str], str] = {}
    query = select(Verdict.regulator, Verdict.info).where(Verdict.status == "100", *_within(Verdict.updated_at, lo, hi))
    for regulator, info in await session.execute(query):
        key = (regulator, _code_of(info))
        verdicts[key] += 1
        vexamples.setdefault(key, info[:300])
    return {
        "atIntake": [{"layer": layer, "code": code, "count": n, "example": examples[(layer, code)]}
                     for (layer, code), n in intake.most_common(top)],
        "byRegulators": [{"regulator": r, "code": code, "count": n, "example": vexamples[(r, code)]}
                         for (r, code), n in verdicts.most_common(top)],
        **({"truncated": True} if seen >= MAX_REASON_ROWS else {}),
    }
