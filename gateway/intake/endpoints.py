"""HTTP endpoints of intake: file, validate, read back filings and receipts."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from kit.xmlsafe import UnsafeXml

from ..auth import ActiveEnterprise, Caller
from ..db import ReadSession
from ..errors import Forbidden, TooLarge, UnsupportedMediaType
from ..httpbody import XmlBody, wants_xml
from ..metrics import FILINGS
from ..problems import PROBLEM_JSON, problem_body, responses, type_uri
from . import repository
from .answers import FilingResult
from .errors import FilingNotFound, FilingRejected, ForeignSender, GuidConflict, MalformedXml
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

_FILING_RESPONSES = responses(MalformedXml, ForeignSender, Forbidden, GuidConflict, TooLarge, UnsupportedMediaType, FilingRejected, **{
    "201": {
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
    "422": {
        "content": {
            PROBLEM_JSON: {
                "example": {
                    "type": type_uri(FilingRejected), "title": "Filing rejected", "status": 422,
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
})


def _service(request: Request) -> IntakeService:
    return request.app.state.intake


def _answer(request: Request, result: FilingResult, headers: dict | None = None) -> Response:
    if result.xml is not None and wants_xml(request):
        return Response(result.xml.encode("utf-8"), status_code=result.status, media_type="application/xml", headers=headers)
    if result.error is None:
        return Response(orjson.dumps(result.answer), status_code=201, media_type="application/json", headers=headers)
    return Response(orjson.dumps(problem_body(result.error)), status_code=result.status, media_type=PROBLEM_JSON, headers=headers)


@router.post("/filings", status_code=201, openapi_extra=_XML_BODY, responses=_FILING_RESPONSES, summary="File a CEB message")
async def file_message(request: Request, caller: ActiveEnterprise, body: XmlBody) -> Response:
    """File one CEB import message (or a `DxpMsg` envelope whose Base64 `Data` holds one).

    The message is parsed safely, validated against swx's schemas, checked against the business
    rules and earlier filings, stored in one transaction and only then answered. Resending the same
    guid with identical content returns the first answer and stores nothing new.
    """
    result = await _service(request).file(body, caller)
    FILINGS.labels(result.message_type or "unknown", "replay" if result.replay else str(result.status)).inc()
    headers = {"Idempotent-Replayed": "true"} if result.replay else None
    if result.answer is not None:
        headers = {**(headers or {}), "Location": f"/v1/filings/{result.answer['guid']}"}
    return _answer(request, result, headers)


@router.post(
    "/validate",
    openapi_extra=_XML_BODY,
    summary="Check a message without filing it",
    responses={**responses(MalformedXml, TooLarge, UnsupportedMediaType), 200: {"content": {"application/json": {"example": {"valid": False, "messageType": "CEB621Message", "errors": [{
        "layer": "schema", "code": "0002", "path": "/ceb:CEB621Message/ceb:Inventory/ceb:InventoryHead/ceb:netWeight",
        "line": 52, "document": "Inventory[1] (ebcCode=3301960AB1, orderNo=SO1)",
        "message": "Element 'ceb:netWeight': 'abc' is not a valid value of the atomic type 'xs:decimal'."}]}}}}},
)
async def validate_message(request: Request, caller: Caller, body: XmlBody) -> Response:
    """Run parsing, schema and rule checks, store nothing, and list every finding.

    Answers 200 for any XML — a foreign `copCode` is a finding here, not a refusal — and 400 only
    for input that is not XML at all.
    """
    try:
        result = await _service(request).validate(body, caller)
    except UnsafeXml as exc:
        raise MalformedXml(exc.message, errors=[{
            "layer": "xml", "code": exc.code, "message": exc.message, "path": None, "line": exc.line, "document": None}]) from None
    return Response(orjson.dumps(result), media_type="application/json")


@router.get("/filings/{guid}", summary="A filing's documents, states and receipts", responses=responses(FilingNotFound))
async def get_filing(guid: str, caller: Caller, session: ReadSession) -> Response:
    found = await repository.filing(session, guid, caller)
    if found is None:
        raise FilingNotFound(f"no filing with guid {guid} is visible to you")
    return Response(orjson.dumps(found), media_type="application/json")


@router.get("/receipts", summary="Receipts addressed to you, oldest first", responses=responses())
async def list_receipts(
    caller: Caller,
    session: ReadSession,
    after: Annotated[int, Query(ge=0, description="cursor: the `next` of the previous page (0 to start)")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    page = await repository.receipts_after(session, caller, after, limit)
    return Response(orjson.dumps(page), media_type="application/json")
