"""``GET /v1/stats``: filings, documents and declarations by type, state, day and enterprise."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from ..auth import Caller
from ..db import ViewSession
from ..errors import BadRequest, Forbidden
from ..problems import responses
from . import service

router = APIRouter(prefix="/v1", tags=["service"])


@router.get("/stats", summary="Statistics (统计监测): operator and regulators", responses=responses(Forbidden, BadRequest))
async def stats(
    caller: Caller, session: ViewSession,
    since: Annotated[date | None, Query(alias="from", description="first day (UTC), inclusive")] = None,
    until: Annotated[date | None, Query(alias="to", description="last day (UTC), inclusive")] = None,
    top: Annotated[int, Query(ge=1, le=100, description="enterprises and reasons listed")] = 10,
) -> dict:
    """Counts of filings (accepted and refused) by message type, day and enterprise; documents by kind
    and state; declarations by state; and the reasons for refusals ranked — at intake by the first
    error's code, by the regulators by the code their verdict begins with."""
    return await service.stats(session, caller, since, until, top)
