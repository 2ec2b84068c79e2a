"""Deliveries (operator), regulators' inboxes and verdicts, and the declaration view."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from kit.times import iso, utcnow

from ..audit import events as audit
from ..audit.events import split_topics
from ..audit.trail import flush, note
from ..auth import REGULATORS, Caller, Principal, require_operator, require_regulator
from ..httpbody import read_bounded, require_xml
from ..problems import Problem
from .declarations import declaration, documents_of, may_read
from .dispatcher import delivery_subject
from .models import DEAD, DELIVERED, PENDING, STATES, Delivery
from .verdicts import ingest

router = APIRouter(prefix="/v1", tags=["routing"])

Regulator = Annotated[str, Path(description=f"one of {', '.join(REGULATORS)}", examples=["customs"])]
After = Annotated[int, Query(ge=0, description="the cursor: `next` of the previous page; 0 for the start")]
Limit = Annotated[int, Query(ge=1, le=500, description="at most this many items")]



def delivery_out(d: Delivery) -> dict:
    return {
        "id": d.id, "regulator": d.regulator, "kind": d.kind, "state": d.state, "attempts": d.attempts,
        "messageGuid": d.message_guid, "messageType": d.message_type, "filer": d.filer,
        "enterprise": d.enterprise_code, "version": d.version, "lastError": d.last_error,
        "nextAttemptAt": iso(d.next_attempt_at) if d.state == PENDING else None,
        "createdAt": iso(d.created_at), "deliveredAt": iso(d.delivered_at), "acknowledgedAt": iso(d.acknowledged_at),
    }


def _own_regulator(caller: Principal, name: str) -> None:
    if name not in REGULATORS:
        raise Problem(404, "Not Found", f"no regulator {name}; regulators are {', '.join(REGULATORS)}")
    if caller.is_operator:
        return
    require_regulator(caller)
    if caller.regulator != name:
        raise Problem(403, "Forbidden", f"this key belongs to {caller.regulator}, not {name}")


@router.get("/deliveries", summary="Deliveries to regulators, by state (operator; a regulator sees its own)")
async def deliveries(
    request: Request, caller: Caller,
    state: Annotated[str | None, Query(description=f"one of {', '.join(STATES)}")] = None,
    regulator: Annotated[str | None, Query(description="only this regulator's")] = None,
    after: After = 0, limit: Limit = 100,
) -> dict:
    if caller.is_regulator:
        regulator = caller.regulator
    else:
        require_operator(caller)
    if state is not None and state not in STATES:
        raise Problem(400, "Bad Request", f"state must be one of {', '.join(STATES)}", field="state")
    query = select(Delivery).where(Delivery.id > after).order_by(Delivery.id).limit(limit)
    if state:
        query = query.where(Delivery.state == state)
    if regulator:
        query = query.where(Delivery.regulator == regulator)
    async with request.app.state.sessions() as session:
        rows = [delivery_out(d) for d in (await session.execute(query)).scalars()]
    return {"deliveries": rows, "next": rows[-1]["id"] if rows else after}


@router.post("/deliveries/{delivery_id}/retry", summary="Send a dead delivery again (operator)")
async def retry(delivery_id: int, request: Request, caller: Caller) -> dict:
    """A `dead` (or still `pending`) delivery goes out again at once, its attempts counted afresh."""
    require_operator(caller)
    state = request.app.state
    async with state.write_lock, state.sessions() as session, session.begin():
        d = await session.get(Delivery, delivery_id, with_for_update=True)
        if d is None:
            raise Problem(404, "Not Found", f"no delivery {delivery_id}")
        if d.state not in (DEAD, PENDING):
            raise Problem(409, "Conflict", f"delivery {delivery_id} is {d.state}; only dead or pending deliveries are retried")
        previous = d.state
        d.state, d.attempts, d.next_attempt_at = PENDING, 0, utcnow()
        note(session, audit.delivery_event(
            audit.DELIVERY_RETRIED, delivery_id=d.id, regulator=d.regulator, subject=delivery_subject(d),
            digest=audit.sha256_hex(f"retry:{d.id}:{previous}".encode()), attempt=0, topics=split_topics(d.topics),
        ))
        await flush(session)
        out = delivery_out(d)
    state.routing_committed()
    return out


@router.get("/regulators/{name}/inbox", summary="A pull regulator's deliveries, oldest first")
async def inbox(name: Regulator, request: Request, caller: Caller, after: After = 0, limit: Limit = 100) -> dict:
    """For a regulator whose routing mode is `pull`: what waits for it, each with its body (the DxpMsg
    or the JSON view). Confirm with `POST …/ack`; unconfirmed items stay in the inbox."""
    _own_regulator(caller, name)
    state = request.app.state
    ep = state.routes.regulators.get(name)
    if ep is None or ep.mode != "pull":
        raise Problem(409, "Conflict", f"{name} is served by push; set mode = \"pull\" in the routing table to read an inbox")
    query = (select(Delivery).where(Delivery.regulator == name, Delivery.state == PENDING, Delivery.id > after)
             .order_by(Delivery.id).limit(limit))
    async with state.sessions() as session:
        rows = list((await session.execute(query)).scalars())
        rendered = await state.dispatcher.render(session, rows)
    items = [{**delivery_out(d), "contentType": item.content_type, "body": item.body.decode("utf-8")} for d, item in zip(rows, rendered)]
    return {"items": items, "next": items[-1]["id"] if items else after}


class Ack(BaseModel):
    ids: list[int] = Field(default_factory=list, max_length=1000, description="delivery ids received")
    upTo: int | None = Field(None, ge=0, description="or: every delivery up to this id")


@router.post("/regulators/{name}/ack", summary="Confirm deliveries read from the inbox")
async def ack(name: Regulator, body: Ack, request: Request, caller: Caller) -> dict:
    _own_regulator(caller, name)
    state = request.app.state
    now = utcnow()
    async with state.write_lock, state.sessions() as session, session.begin():
        query = select(Delivery).where(Delivery.regulator == name, Delivery.state == PENDING)
        if body.upTo is not None:
            query = query.where(Delivery.id <= body.upTo)
        elif body.ids:
            query = query.where(Delivery.id.in_(body.ids))
        else:
            raise Problem(422, "Invalid request", "give ids or upTo", field="ids")
        rows = list((await session.execute(query.with_for_update())).scalars())
        digests = await state.dispatcher.digests(session, rows)
        for d in rows:
            d.state, d.delivered_at, d.attempts = DELIVERED, now, d.attempts + 1
            note(session, audit.delivery_event(
                audit.DELIVERY_DELIVERED, delivery_id=d.id, regulator=name, subject=delivery_subject(d), digest=digests[d.id],
                attempt=d.attempts, topics=split_topics(d.topics),
            ))
        await flush(session)
    state.audit.committed()
    return {"acknowledged": [d.id for d in rows]}


@router.post("/regulators/receipts", status_code=201, summary="A regulator's verdicts (CEB receipts)")
async def receipts(request: Request, caller: Caller) -> Any:
    """A CEB receipt message (CEB312 … CEB712, or a CEB816 tax bill), bare or in a `DxpMsg`. Each return
    node must answer a document the window routed to you; the verdict becomes part of the declaration's
    state and is forwarded to the firms concerned. Resending a receipt (same guid) changes nothing."""
    require_regulator(caller)
    state = request.app.state
    require_xml(request)
    body = await read_bounded(request, state.settings.max_body_bytes)
    async with state.write_lock, state.sessions() as session, session.begin():
        status, answer = await ingest(session, str(caller.regulator), body, max_depth=state.settings.max_xml_depth)
        await flush(session)
    state.audit.committed()
    return JSONResponse(answer, status_code=status)


@router.get("/declarations/{ebpCode}/{orderNo}", summary="One declaration across all regulators, and its overall state")
async def declaration_view(
    request: Request, caller: Caller,
    ebpCode: Annotated[str, Path(min_length=1, max_length=18)],
    orderNo: Annotated[str, Path(min_length=1, max_length=60)],
) -> dict:
    """Each document (order, payment, waybill, list, cancellation, return), each regulator's latest
    verdict with its reason, and one `state`: waiting, review, inspection, rejected, cancelled or
    released. The operator, the regulators, and the firms named in its documents may read it."""
    async with request.app.state.sessions() as session:
        docs = await documents_of(session, ebpCode, orderNo)
        if not (caller.is_operator or caller.is_regulator or await may_read(session, docs, caller.codes or (caller.code or "",))):
            docs = []
        if not docs:
            raise Problem(404, "Not Found", f"no declaration for order {orderNo} of platform {ebpCode} that you may read")
        return await declaration(session, ebpCode, orderNo, docs)
