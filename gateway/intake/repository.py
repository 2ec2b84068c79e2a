"""Every query of intake: earlier filings, stored documents, registered parties, and the bulk writes.

Accepted filings are written table by table for the whole batch, each table in one statement (the
group commit of ``writer.py``); refusals are kept once per sender and content. Reads of a filing and
of a firm's receipt feed see only what the caller may.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from lxml import etree
from sqlalchemy import or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.bulk import bulk_insert, insert_ids, upsert
from kit.times import utcnow
from schemas.catalog import ENTERPRISE_FIELDS, FILED, STATUS_DECLARED, STATUS_DELETED, STATUS_SAVED
from schemas.documents import FiledDocument, ceb

from ..audit import events as audit
from ..auth import Principal
from ..models import Document, DocumentParty, DocumentRef, DocumentVersion, Enterprise, Message, Receipt, Rejection
from ..routing.outbox import StoredMessage
from ..trail import note
from .answers import Filing, FilingResult, return_info
from .findings import Finding, schema_failed, worst_code
from .keys import document_status
from .parties import Registered
from .receipts import DocumentReturn, document_fields, findings_text, receipt_xml
from .validate import Checked

STATUS_WORDS = {STATUS_SAVED: "saved", STATUS_DECLARED: "being declared", STATUS_DELETED: "deleted"}
# documents that get an e-port pre-entry number (export: every receipt but 304, 404 and 506 requires one, §8.2)
PRE_NO_TYPES = {"621", "623", "625", "711", "507", "509", "603", "605", "607", "213", "215", "701"}


async def prior_messages(session: AsyncSession, guids: list[str]) -> dict[str, Message]:
    """The accepted messages with these guids. On PostgreSQL filings of one guid take turns (an
    advisory lock per guid, sorted so two batches never wait for each other in a circle), so a
    resubmission racing its original is answered as a replay rather than judged beside it."""
    if not guids:
        return {}
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(g)) FROM unnest(CAST(:gs AS text[])) AS g"), {"gs": guids}
        )
    found = await session.execute(select(Message).where(Message.guid.in_(guids)))
    return {m.guid: m for m in found.scalars()}


def _key_condition(docs: list[FiledDocument]):
    pairs = {(d.mtype.kind, d.key_text) for d in docs}
    return tuple_(Document.kind, Document.business_key).in_(list(pairs))


async def existing_documents(
    session: AsyncSession, docs: list[FiledDocument], *, lock: bool = False
) -> dict[tuple[str, str], Document]:
    """The stored documents with these keys; ``lock`` (when filing) holds their rows until commit, so
    that a regulator's verdict arriving meanwhile waits instead of overwriting the new version."""
    if not docs:
        return {}
    query = select(Document).where(_key_condition(docs))
    if lock:
        query = query.order_by(Document.id).with_for_update()  # one lock order everywhere: no deadlocks
    rows = (await session.execute(query)).scalars().all()
    return {(r.kind, r.business_key): r for r in rows}


async def lookup(session: AsyncSession, codes: set[str]) -> dict[str, Registered]:
    """The registered enterprises known by any of ``codes`` (customs code or USCC), by each code."""
    if not codes:
        return {}
    rows = (
        await session.execute(
            select(Enterprise).where(or_(Enterprise.code.in_(codes), Enterprise.customs_code.in_(codes), Enterprise.uscc.in_(codes)))
        )
    ).scalars()
    found: dict[str, Registered] = {}
    for e in rows:
        reg = Registered(e.code, e.name, frozenset(e.roles), e.status, e.valid_from, e.valid_to)
        for c in (e.code, e.customs_code, e.uscc):
            if c:
                found[c] = reg
    return found


async def store_rejection(
    session: AsyncSession, principal: Principal, raw: bytes, checked: Checked | None, result: FilingResult, findings: list[Finding]
) -> None:
    """Keep a refused filing once per (sender, content), with a receipt in the sender's feed."""
    digest = checked.digest if checked else hashlib.sha256(raw).hexdigest()
    code = principal.code or "operator"
    exists = (
        await session.execute(select(Rejection.id).where(Rejection.sender_code == code, Rejection.digest == digest))
    ).scalar_one_or_none()
    if exists is not None:
        return
    rejection = Rejection(
        guid=checked.guid if checked and checked.guid and len(checked.guid) <= 36 else None,
        message_type=checked.mtype.code if checked and checked.mtype else None,
        sender_code=code,
        digest=digest,
        http_status=result.status,
        findings=[f.as_dict() for f in findings],
        raw=raw,
    )
    session.add(rejection)
    await session.flush()
    readable = checked is not None and checked.mtype is not None and not schema_failed(findings)
    note(session, *audit.filing_rejected(
        sender=principal.code, guid=rejection.guid, message_type=rejection.message_type, digest=digest,
        http_status=result.status, codes=[f.code for f in findings], docs=checked.docs if readable else (),
    ))
    if result.xml is not None and principal.code:
        status = worst_code(findings)
        if result.receipt_type == "900":  # CEB900 carries the exchange code as a negative number
            status = "-" + status.lstrip("-")
        session.add(Receipt(
            addressee=principal.code, rejection_id=rejection.id, receipt_type=result.receipt_type,
            return_status=status, return_info=findings_text(findings)[:1000], xml=result.xml,
        ))


def _pre_no(doc: FiledDocument, row_id: int) -> str:
    customs = doc.head.text("customsCode") or "0000"
    return f"{customs[:4]:0>4}{row_id:014d}"


def document_links(doc: FiledDocument) -> tuple[str | None, dict | None]:
    """The declaration a document belongs to ("ebpCode|orderNo") and the waybill it names, if any."""
    head = doc.head
    ref = audit.declaration_ref(head)
    order_ref = "|".join(ref) if ref else None
    logistics, number = head.text("logisticsCode"), head.text("logisticsNo")
    own = doc.mtype.kind in ("waybill", "export_waybill")
    links = {"waybill": f"{logistics}|{number}"} if logistics and number and not own else None
    mode = head.text("tradeMode") if doc.mtype.kind in ("inventory", "export_inventory") else None
    if mode:  # what the statistics count lists by
        links = {**(links or {}), "tradeMode": mode}
    return order_ref, links


def export_refs(doc: FiledDocument) -> set[str]:
    """What an export document names, for ``document_refs``: its waybills ("waybill:CODE|NO", the head's
    logisticsCode with every logisticsNo in it), its lists ("list:INVTNO") and, for an arrival or
    departure without lines, its master bill ("bill:BILLNO", which covers the waybills a 607 put under it)."""
    if doc.mtype.direction != "export" or doc.mtype.kind == "export_waybill":
        return set()
    node, head = doc.node, doc.head
    refs = {f"list:{el.text}" for el in node.iter(ceb("invtNo")) if el.text}
    logistics = head.text("logisticsCode")
    if logistics:
        refs |= {f"waybill:{logistics}|{el.text}" for el in node.iter(ceb("logisticsNo")) if el.text}
    bill = head.text("billNo")
    if bill and (doc.mtype.kind == "consolidation" or (doc.mtype.kind in ("arrival", "departure") and not doc.lines)):
        refs.add(f"bill:{bill}")
    return {r[:120] for r in refs}


@dataclass(slots=True)
class _Placed:
    """One document of an accepted filing on its way into the tables."""

    doc: FiledDocument
    id: int
    version: int
    pre_no: str | None
    status: str
    readers: set[str]  # codes that may read it and are not yet recorded
    topics: tuple[str, ...]
    row: Document | None = None  # the stored document it changes, if any
    answer: DocumentReturn | None = None
    receipt: str = ""  # its own receipt, for the filer's feed


async def store_filings(
    session: AsyncSession, filings: list[Filing], stored: dict[tuple[str, str], Document]
) -> list[tuple[FilingResult, StoredMessage]]:
    """Store every document of accepted filings; returns, per filing, its answer and its message.

    Written table by table for the whole batch, each table in one statement: the documents (their
    ids make the pre-entry numbers), the messages with their answers, then versions, parties and
    receipts. Documents that already exist are changed through the ORM rows ``stored`` locked.
    """
    if not filings:
        return []
    now = utcnow()
    placed: list[list[_Placed]] = []
    new_rows: list[dict] = []
    new_placed: list[_Placed] = []
    for checked, principal in filings:
        mt, mine = checked.mtype, []
        for doc in checked.docs:
            status = document_status(doc)
            row = stored.get((mt.kind, doc.key_text))
            parties = {f: v for f in ENTERPRISE_FIELDS if (v := doc.head.text(f))}
            topics = audit.document_topics(doc, principal.code)
            order_ref, links = document_links(doc)
            readers = set(parties.values()) | {principal.code}  # its filer and every enterprise it names, ever
            if row is None:
                p = _Placed(doc, 0, 1, None, status, readers, topics)
                new_rows.append({
                    "kind": mt.kind, "business_key": doc.key_text, "owner_code": principal.code, "parties": parties,
                    "status": status, "app_status": doc.app_status, "version": 1, "created_at": now, "updated_at": now,
                    "order_ref": order_ref, "links": links, "topics": "\n".join(topics),
                })
                new_placed.append(p)
            else:
                readers -= set(row.parties.values()) | {row.owner_code}  # already recorded
                if row.status != status:
                    note(session, audit.document_state(
                        doc, sender=principal.code, digest=checked.digest, before=row.status, after=status,
                        version=row.version + 1,
                    ))
                row.version += 1
                row.status, row.app_status, row.parties, row.updated_at = status, doc.app_status, parties, now
                row.order_ref, row.links, row.topics = order_ref, links, "\n".join(topics)
                if doc.app_type == "1":  # filed anew after a delete: the new filer owns it
                    row.owner_code = principal.code
                p = _Placed(doc, row.id, row.version, row.pre_no, status, readers, topics, row)
            mine.append(p)
        placed.append(mine)
    if new_rows:
        for p, id_ in zip(new_placed, await insert_ids(session, Document.__table__, new_rows)):
            p.id = id_

    numbered: list[dict] = []  # pre-entry numbers of new documents
    messages: list[dict] = []
    results: list[tuple[FilingResult, StoredMessage]] = []
    for (checked, principal), mine in zip(filings, placed):
        mt = checked.mtype
        returns: list[DocumentReturn] = []
        answers: list[dict] = []
        for p in mine:
            doc = p.doc
            if mt.code in PRE_NO_TYPES and p.pre_no is None:
                p.pre_no = _pre_no(doc, p.id)
                if p.row is not None:
                    p.row.pre_no = p.pre_no
                else:
                    numbered.append({"id": p.id, "pre_no": p.pre_no})
            fields = document_fields(mt, doc.head.values(), p.pre_no)
            p.answer = DocumentReturn(
                fields, p.status if p.status != STATUS_DELETED else STATUS_DECLARED, return_info(doc, p.version)
            )
            returns.append(p.answer)
            answers.append({
                "index": doc.index, "kind": mt.kind, "key": dict(zip(doc.key_names, doc.key)), "appType": doc.app_type,
                "version": p.version, "status": p.status, "statusText": STATUS_WORDS[p.status],
                **({"preNo": p.pre_no} if p.pre_no else {}),
            })
        xml = receipt_xml(mt, returns, now=now)
        for p in mine:  # the message's receipt serves when it has one document
            p.receipt = xml if len(mine) == 1 else receipt_xml(mt, [p.answer], now=now)
        body = {
            "guid": checked.guid, "messageType": mt.root, "status": "accepted", "receivedAt": now.isoformat(),
            "receiptType": mt.receipt_root, "documents": answers,
        }
        messages.append({
            "guid": checked.guid, "message_type": mt.code, "sender_code": principal.code, "digest": checked.digest,
            "raw": checked.raw, "enveloped": checked.enveloped, "answer": body, "answer_xml": xml, "received_at": now,
        })
        results.append((FilingResult(body, None, xml, mt.receipt_code), StoredMessage(
            0, checked.guid, mt.code, principal.code, checked.digest, tuple(t for p in mine for t in p.topics),
        )))
    if numbered:
        await session.execute(update(Document), numbered)
    for (_, message), id_ in zip(results, await insert_ids(session, Message.__table__, messages)):
        message.id = id_

    parties: list[tuple] = []
    refs: list[tuple] = []
    versions: list[tuple] = []
    receipts: list[tuple] = []
    for (checked, principal), mine, (_, message) in zip(filings, placed, results):
        mt = checked.mtype
        for p in mine:
            doc = p.doc
            parties += [(p.id, code) for code in sorted(p.readers)]
            refs += [(ref, p.id) for ref in sorted(export_refs(doc))]
            versions.append((
                p.id, p.version, message.id, doc.index, doc.app_type, doc.app_status, doc.head.text("guid") or "",
                etree.tostring(doc.node, encoding="unicode"), now,
            ))
            receipts.append((
                principal.code, message.id, p.id, mt.receipt_code, p.answer.status, p.answer.info, p.receipt, now,
            ))
            note(session, audit.filing_accepted(
                doc, sender=principal.code, guid=checked.guid, digest=checked.digest, version=p.version, status=p.status,
                topics=p.topics,
            ))
    await bulk_insert(session, DocumentParty.__table__, ("document_id", "party_code"), parties)
    # a new version may name what an earlier one did: those rows stay
    await upsert(session, DocumentRef.__table__, ("ref", "document_id"), [{"ref": r, "document_id": d} for r, d in refs])
    await bulk_insert(session, DocumentVersion.__table__, (
        "document_id", "version", "message_id", "position", "app_type", "app_status", "head_guid", "xml", "created_at",
    ), versions)
    await bulk_insert(session, Receipt.__table__, (
        "addressee", "message_id", "document_id", "receipt_type", "return_status", "return_info", "xml", "created_at",
    ), receipts)
    return results


# ---- reading back -----------------------------------------------------------------------------------


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
