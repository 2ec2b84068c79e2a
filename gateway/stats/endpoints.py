"""``GET /v1/stats``: filings, documents and declarations by type, state, day and enterprise."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request

from ..auth import Caller, require_operator
from ..problems import Problem
from . import queries

router = APIRouter(prefix="/v1", tags=["service"])


@router.get("/stats", summary="Statistics (统计监测): operator and regulators")
async def stats(
    request: Request, caller: Caller,
    since: Annotated[date | None, Query(alias="from", description="first day (UTC), inclusive")] = None,
    until: Annotated[date | None, Query(alias="to", description="last day (UTC), inclusive")] = None,
    top: Annotated[int, Query(ge=1, le=100, description="enterprises and reasons listed")] = 10,
) -> dict:
    """Counts of filings (accepted and refused) by message type, day and enterprise; documents by kind
    and state; declarations by state; and the reasons for refusals ranked — at intake by the first
    error's code, by the regulators by the code their verdict begins with."""
    if not caller.is_regulator:
        require_operator(caller)
    if since and until and until < since:
        raise Problem(400, "Bad Request", f"to ({until}) is before from ({since})", field="to")
    lo, hi = queries.period(since, until)
    async with request.app.state.sessions() as session:
        return {
            "period": {"from": since.isoformat() if since else None, "to": until.isoformat() if until else None},
            "filings": await queries.filings(session, lo, hi, top),
            "documents": {"byKind": await queries.documents(session, lo, hi)},
            "declarations": await queries.declarations(session, lo, hi),
            "rejections": await queries.reasons(session, lo, hi, top),
        }
