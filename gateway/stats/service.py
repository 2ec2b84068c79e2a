"""Statistics (统计监测) for the operator and the regulators: one period, every count the console shows."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from ..auth import Principal, require_operator
from ..errors import BadRequest
from . import repository


async def stats(session: AsyncSession, caller: Principal, since: date | None, until: date | None, top: int) -> dict:
    if not caller.is_regulator:
        require_operator(caller)
    if since and until and until < since:
        raise BadRequest(f"to ({until}) is before from ({since})", field="to")
    lo, hi = repository.period(since, until)
    return {
        "period": {"from": since.isoformat() if since else None, "to": until.isoformat() if until else None},
        "filings": await repository.filings(session, lo, hi, top),
        "documents": {"byKind": await repository.documents(session, lo, hi)},
        "declarations": await repository.declarations(session, lo, hi),
        "lists": {"byDirection": await repository.lists_by_trade_mode(session, lo, hi)},
        "rejections": await repository.reasons(session, lo, hi, top),
    }
