"""Reading back filings and receipts, each caller seeing only its own."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.catalog import FILED

from ..auth import Principal
from ..models import (
    Document,
    DocumentParty,
    DocumentVersion,
    Message,
    Receipt,
    Rejection,
)


def _receipt_json(r: Receipt, guid: str | None = None) -> dict:
    return {
        "id": r.id, "receiptType": f"CEB{r.receipt_type}Message", "returnStatus": r.return_status,
        "returnInfo": r.return_info, "createdAt": r.created_at.isoformat(), "addressee": r.addressee,
        "from": r.regulator or "swx", **({"documentId": r.document_id} if r.document_id else {}),
        **({"messageGuid": guid} if guid else {}), "xml": r.xml,
    }


async def filing(session: AsyncSession, guid: str, principal: Principal) -> dict | None:
    """A filing's documents, their versions and current states, its receipts and any refused attempts.

    The operator and regulators see every filing; its sender sees all of it; an enterprise that a
    document names (platform, seller, payment or logistics firm, agent …) sees those documents and
    their receipts only. Everyone else is told there is no such filing.
    """
    sees_all = principal.is_operator or principal.is_regulator
    message = (await session.execute(select(Message).where(Message.guid == guid))).scalar_one_or_none()
    rej_query = select(Rejection).where(Rejection.guid == guid).order_by(Rejection.id)
    if not sees_all:
        rej_query = rej_query.where(Rejection.sender_code == principal.code)
    rejections = (await session.execute(rej_query)).scalars().all()
    named_only = message is not None and not sees_all and message.sender_code != principal.code
    if message is None and not rejections:
        return None
    attempts = [
        {"receivedAt": r.received_at.isoformat(), "httpStatus": r.http_status, "errors": r.findings} for r in rejections
    ]
    if message is None:
        mt = FILED.get(rejections[-1].message_type or "")
        return {"guid": guid, "status": "rejected", "messageType": mt.root if mt else None, "rejections": attempts}
    doc_query = (
        select(DocumentVersion, Document)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(DocumentVersion.message_id == message.id)
        .order_by(DocumentVersion.position)
    )
    if named_only:
        named = select(DocumentParty.document_id).where(DocumentParty.party_code.in_(principal.codes or (principal.code,)))
        doc_query = doc_query.where(Document.id.in_(named))
    rows = (await session.execute(doc_query)).all()
    if named_only and not rows:
        return None if not rejections else {"guid": guid, "status": "rejected", "rejections": attempts}
    mt = FILED[message.message_type]
    documents = [
        {
            "index": v.position, "kind": d.kind, "key": dict(zip(mt.key, d.business_key.split("|"))),
            "appType": v.app_type, "appStatus": v.app_status, "version": v.version, "headGuid": v.head_guid,
            "current": {"version": d.version, "status": d.status, "updatedAt": d.updated_at.isoformat()},
            **({"preNo": d.pre_no} if d.pre_no else {}),
        }
        for v, d in rows
    ]
    receipt_query = select(Receipt).where(Receipt.message_id == message.id).order_by(Receipt.id)
    if named_only:
        receipt_query = receipt_query.where(Receipt.document_id.in_([d.id for _, d in rows]))
    elif not sees_all:
        receipt_query = receipt_query.where(Receipt.addressee == principal.code)
    receipts = (await session.execute(receipt_query)).scalars().all()
    return {
        "guid": guid, "status": "accepted", "messageType": mt.root, "sender": message.sender_code,
        "receivedAt": message.received_at.isoformat(), "documents": documents,
        "receipts": [_receipt_json(r) for r in receipts], "rejections": attempts,
    }


async def receipts_after(session: AsyncSession, principal: Principal, after: int, limit: int) -> dict:
    """The caller's receipts with an id above ``after``, oldest first; ``next`` is the cursor to pass on."""
    query = (
        select(Receipt, Message.guid, Rejection.guid)
        .outerjoin(Message, Message.id == Receipt.message_id)
        .outerjoin(Rejection, Rejection.id == Receipt.rejection_id)
        .where(Receipt.id > after)
        .order_by(Receipt.id)
        .limit(limit)
    )
    if not (principal.is_operator or principal.is_regulator):
        query = query.where(Receipt.addressee == principal.code)
    rows = (await session.execute(query)).all()
    items = [_receipt_json(r, mguid or rguid) for r, mguid, rguid in rows]
    return {"receipts": items, "next": items[-1]["id"] if items else after}
