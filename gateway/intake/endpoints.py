"""HTTP endpoints of intake: file, validate, read back filings and receipts."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from kit.xmlsafe import UnsafeXml

from ..auth import Caller, require_active_enterprise
from ..httpbody import read_bounded, require_xml, wants_xml
from ..metrics import FILINGS
from ..problems import PROBLEM_JSON, Problem
from . import queries
from .service import IntakeService

router = APIRouter(prefix="/v1", tags=["filings"])

_XML_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/xml": {
                "schema": {"type": "string"},
                "example": '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<ceb:CEB311Message guid="9D5C0F2E-7B1A-4C3E-9F61-2A8B4D6E1F03" version="1.0" '
                'xmlns:ceb="http://www.chinaport.gov.cn/ceb">\n  <ceb:Order>…</ceb:Order>\n'
                "  <ceb:BaseTransfer>…</ceb:BaseTransfer>\n</ceb:CEB311Message>",
            }
        },
    }
}

_FILING_RESPONSES = {
    201: {
        "description": "Accepted and durably stored. With `Accept: application/xml`, the CEB receipt (CEB312, …).",
        "content": {
            "application/json": {
                "example": {
                    "guid": "9D5C0F2E-7B1A-4C3E-9F61-2A8B4D6E1F03", "messageType": "CEB311Message",
                    "status": "accepted", "receivedAt": "2026-11-22T08:00:00+00:00", "receiptType": "CEB312Message",
                    "documents": [{
                        "index": 1, "kind": "order", "key": {"ebpCode": "3301960AB1", "orderNo": "SO20261122001"},
                        "appType": "1", "version": 1, "status": "2", "statusText": "being declared",
                    }],
                }
            },
            "application/xml": {"schema": {"type": "string"}},
        },
    },
    400: {"description": "Not well-formed XML, or a forbidden construct (DTD, entity)."},
    401: {"description": "No or unknown API key."},
    403: {"description": "`BaseTransfer/copCode` is not the caller's enterprise code, or the caller is not an enterprise."},
    409: {"description": "The guid was already used for different content."},
    413: {"description": "Body larger than the configured limit (10 MiB by default)."},
    415: {"description": "Body not sent as application/xml."},
    422: {
        "description": "Rejected; every finding listed. Nothing was stored except the rejection itself.",
        "content": {
            PROBLEM_JSON: {
                "example": {
                    "type": "about:blank", "title": "Filing rejected", "status": 422,
                    "detail": "1 problem(s) found; nothing was stored. Fix them all and file again.",
                    "guid": "9D5C0F2E-7B1A-4C3E-9F61-2A8B4D6E1F03", "messageType": "CEB311Message",
                    "errors": [{
                        "layer": "rule", "code": "-301008",
                        "message": "acturalPaid 120.00 must equal goodsValue 100 + freight 10 + taxTotal 9.1 - discount 0 = 119.10",
                        "path": "/ceb:CEB311Message/ceb:Order/ceb:OrderHead/ceb:acturalPaid", "line": 19,
                        "document": "Order[1] (ebpCode=3301960AB1, orderNo=SO20261122001)",
                    }],
                }
            }
        },
    },
}


def _service(request: Request) -> IntakeService:
    return request.app.state.intake


def _answer(request: Request, status: int, body: dict, xml: str | None, headers: dict | None = None) -> Response:
    if xml is not None and wants_xml(request):
        return Response(xml.encode("utf-8"), status_code=status, media_type="application/xml", headers=headers)
    media = "application/json" if status < 400 else PROBLEM_JSON
    return Response(orjson.dumps(body), status_code=status, media_type=media, headers=headers)


@router.post("/filings", status_code=201, openapi_extra=_XML_BODY, responses=_FILING_RESPONSES, summary="File a CEB message")
async def file_message(request: Request, caller: Caller) -> Response:
    """File one CEB import message (or a `DxpMsg` envelope whose Base64 `Data` holds one).

    The message is parsed safely, validated against swx's schemas, checked against the business
    rules and earlier filings, stored in one transaction and only then answered. Resending the same
    guid with identical content returns the first answer and stores nothing new.
    """
    require_active_enterprise(caller)
    require_xml(request)
    body = await read_bounded(request, request.app.state.settings.max_body_bytes)
    outcome = await _service(request).file(body, caller)
    FILINGS.labels(outcome.body.get("messageType") or "unknown", "replay" if outcome.replay else str(outcome.status)).inc()
    headers = {"Idempotent-Replayed": "true"} if outcome.replay else None
    if outcome.status == 201:
        headers = {**(headers or {}), "Location": f"/v1/filings/{outcome.body['guid']}"}
    return _answer(request, outcome.status, outcome.body, outcome.xml, headers)


@router.post(
    "/validate",
    openapi_extra=_XML_BODY,
    summary="Check a message without filing it",
    responses={200: {"content": {"application/json": {"example": {"valid": False, "messageType": "CEB621Message", "errors": [{
        "layer": "schema", "code": "0002", "path": "/ceb:CEB621Message/ceb:Inventory/ceb:InventoryHead/ceb:netWeight",
        "line": 52, "document": "Inventory[1] (ebcCode=3301960AB1, orderNo=SO1)",
        "message": "Element 'ceb:netWeight': 'abc' is not a valid value of the atomic type 'xs:decimal'."}]}}}}},
)
async def validate_message(request: Request, caller: Caller) -> Response:
    """Run parsing, schema and rule checks, store nothing, and list every finding.

    Answers 200 for any XML — a foreign `copCode` is a finding here, not a refusal — and 400 only
    for input that is not XML at all.
    """
    require_xml(request)
    body = await read_bounded(request, request.app.state.settings.max_body_bytes)
    try:
        result = await _service(request).validate(body, caller)
    except UnsafeXml as exc:
        raise Problem(400, "Malformed XML", exc.message, errors=[{
            "layer": "xml", "code": exc.code, "message": exc.message, "path": None, "line": exc.line, "document": None}])
    return Response(orjson.dumps(result), media_type="application/json")


@router.get("/filings/{guid}", summary="A filing's documents, states and receipts")
async def get_filing(guid: str, request: Request, caller: Caller) -> Response:
    async with request.app.state.sessions() as session:
        found = await queries.filing(session, guid, caller)
    if found is None:
        raise Problem(404, "Not Found", f"no filing with guid {guid} is visible to you")
    return Response(orjson.dumps(found), media_type="application/json")


@router.get("/receipts", summary="Receipts addressed to you, oldest first")
async def list_receipts(
    request: Request,
    caller: Caller,
    after: Annotated[int, Query(ge=0, description="cursor: the `next` of the previous page (0 to start)")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    async with request.app.state.sessions() as session:
        page = await queries.receipts_after(session, caller, after, limit)
    return Response(orjson.dumps(page), media_type="application/json")
