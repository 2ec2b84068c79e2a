"""Deliveries (operator), regulators' inboxes and verdicts, and the declaration view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..auth import REGULATORS, Caller, Operator, RegulatorCaller, UnknownRegulator
from ..db import ReadSession, ViewSession, WriteSession
from ..errors import Forbidden, TooLarge, UnsupportedMediaType
from ..httpbody import XmlBody
from ..problems import responses
from . import service
from .declarations import readable_declaration, readable_summary
from .errors import (
    DeclarationNotFound,
    DeliveryNotFound,
    NothingToAcknowledge,
    NotRetryable,
    NotRoutedHere,
    NotYourRegulator,
    PushRegulator,
    ReceiptRejected,
    ReceiptUnmatched,
    SummaryNotFound,
    UnknownState,
)
from .models import DeliveryState

router = APIRouter(prefix="/v1", tags=["routing"])

Regulator = Annotated[str, Path(description=f"one of {', '.join(REGULATORS)}", examples=["customs"])]
After = Annotated[int, Query(ge=0, description="the cursor: `next` of the previous page; 0 for the start")]
Limit = Annotated[int, Query(ge=1, le=500, description="at most this many items")]
OWN = (Forbidden, UnknownRegulator, NotYourRegulator)


@router.get("/deliveries", summary="Deliveries to regulators, by state (operator; a regulator sees its own)",
            responses=responses(Forbidden, UnknownState))
async def deliveries(
    caller: Caller, session: ViewSession,
    state: Annotated[str | None, Query(description=f"one of {', '.join(DeliveryState)}")] = None,
    regulator: Annotated[str | None, Query(description="only this regulator's")] = None,
    after: After = 0, limit: Limit = 100,
) -> dict:
    return await service.deliveries(session, caller, state=state, regulator=regulator, after=after, limit=limit)


@router.post("/deliveries/{delivery_id}/retry", summary="Send a dead delivery again (operator)",
             responses=responses(Forbidden, DeliveryNotFound, NotRetryable))
async def retry(delivery_id: int, caller: Operator, session: WriteSession) -> dict:
    """A `dead` (or still `pending`) delivery goes out again at once, its attempts counted afresh."""
    return await service.retry(session, delivery_id)


@router.get("/regulators/{name}/inbox", summary="A pull regulator's deliveries, oldest first",
            responses=responses(*OWN, PushRegulator))
async def inbox(name: Regulator, request: Request, caller: Caller, session: ReadSession, after: After = 0,
                limit: Limit = 100) -> dict:
    """For a regulator whose routing mode is `pull`: what waits for it, each with its body (the DxpMsg
    or the JSON view). Confirm with `POST …/ack`; unconfirmed items stay in the inbox."""
    service.own_regulator(caller, name)
    state = request.app.state
    return await service.inbox(session, state.routes, state.dispatcher, name, after, limit)


class Ack(BaseModel):
    ids: list[int] = Field(default_factory=list, max_length=1000, description="delivery ids received")
    upTo: int | None = Field(None, ge=0, description="or: every delivery up to this id")


@router.post("/regulators/{name}/ack", summary="Confirm deliveries read from the inbox",
             responses=responses(*OWN, NothingToAcknowledge))
async def ack(name: Regulator, body: Ack, request: Request, caller: Caller, session: WriteSession) -> dict:
    service.own_regulator(caller, name)
    return await service.acknowledge(session, request.app.state.dispatcher, name, body.ids, body.upTo)


@router.post("/regulators/receipts", status_code=201, summary="A regulator's verdicts (CEB receipts)",
             responses=responses(Forbidden, TooLarge, UnsupportedMediaType, ReceiptRejected, ReceiptUnmatched, NotRoutedHere,
                                 **{"200": {"description": "a receipt with this guid was recorded before: its first answer"}}))
async def receipts(request: Request, caller: RegulatorCaller, body: XmlBody) -> JSONResponse:
    """A CEB receipt message (CEB312 … CEB712, or a CEB816 tax bill), bare or in a `DxpMsg`. Each return
    node must answer a document the window routed to you; the verdict becomes part of the declaration's
    state and is forwarded to the firms concerned. Resending a receipt (same guid) changes nothing."""
    answer = await request.app.state.verdicts.ingest(str(caller.regulator), body)
    return JSONResponse(answer, status_code=200 if answer.get("replay") else 201)


@router.get("/declarations/{ebpCode}/{orderNo}", summary="One declaration across all regulators, and its overall state",
            responses=responses(DeclarationNotFound))
async def declaration_view(
    caller: Caller, session: ViewSession,
    ebpCode: Annotated[str, Path(min_length=1, max_length=18)],
    orderNo: Annotated[str, Path(min_length=1, max_length=60)],
) -> dict:
    """Each document (order, payment, waybill, list, cancellation, return), each regulator's latest
    verdict with its reason, and one `state`: waiting, review, inspection, rejected, cancelled or
    released; on export also departed (899) and returned (fully or partly), with the summary its list
    is in. An export order of a foreign platform (ebpCode 无) is found under its seller's code. The
    operator, the regulators, and the firms named in its documents may read it."""
    return await readable_declaration(session, caller, ebpCode, orderNo)


@router.get("/summaries/{agentCode}/{copNo}", summary="One export summary (汇总申请): its lists and the declarations it became",
            responses=responses(SummaryNotFound))
async def summary_view(
    caller: Caller, session: ViewSession,
    agentCode: Annotated[str, Path(min_length=1, max_length=18)],
    copNo: Annotated[str, Path(min_length=1, max_length=30)],
) -> dict:
    """The summary request's parts and customs' answer (702: its `sumNo`), the lists it covers with
    their states, and each customs declaration built from it (792: `declSeqNo`, `entryId`, `decState`,
    its lines mapped to declaration items `gseqno`). The operator, the regulators, and the firms named
    in it may read it."""
    return await readable_summary(session, caller, agentCode, copNo)
