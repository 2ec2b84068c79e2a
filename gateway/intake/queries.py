"""Reading back filings and receipts, each caller seeing only its own."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.catalog import FILED

from ..auth import Principal
from ..models import Document, DocumentVersion, Message, Receipt, Rejection


def _receipt_json(r: Receipt, guid: str | None = None) -> dict:
    return {
        "id": r.id, "receiptType": f"CEB{r.receipt_type}Message", "returnStatus": r.return_status,
        "returnInfo": r.return_info, "createdAt": r.created_at.isoformat(), "addressee": r.addressee,
        **({"messageGuid": guid} if guid else {}), "xml": r.xml,
    }


async def filing(session: AsyncSession, guid: str, principal: Principal) -> dict | None:
    """A filing's documents, their versions and current states, its receipts and any refused attempts."""
    query = select(Message).where(Message.guid == guid)
    rej_query = select(Rejection).where(Rejection.guid == guid).order_by(Rejection.id)
    if not principal.is_operator:
        query = query.where(Message.sender_code == principal.code)
        rej_query = rej_query.where(Rejection.sender_code == principal.code)
    message = (await session.execute(query)).scalar_one_or_none()
    rejections = (await session.execute(rej_query)).scalars().all()
    if message is None and not rejections:
        return None
    attempts = [
        {"receivedAt": r.received_at.isoformat(), "httpStatus": r.http_status, "errors": r.findings} for r in rejections
    ]
    if message is None:
        mt = FILED.get(rejections[-1].message_type or "")
        return {"guid": guid, "status": "rejected", "messageType": mt.root if mt else None, "rejections": attempts}
    rows = (
        await session.execute(
            select(DocumentVersion, Document)
            .join(Document, Document.id == DocumentVersion.document_id)
            .where(DocumentVersion.message_id == message.id)
            .order_by(DocumentVersion.position)
        )
    ).all()
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
    if not principal.is_operator:
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
    if not principal.is_operator:
        query = query.where(Receipt.addressee == principal.code)
    rows = (await session.execute(query)).all()
    items = [_receipt_json(r, mguid or rguid) for r, mguid, rguid in rows]
    return {"receipts": items, "next": items[-1]["id"] if items else after}
