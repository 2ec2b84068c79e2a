"""Step 4 of intake and the answers: business keys against earlier filings, storage, receipts.

A filing is all or nothing: either every document of the message is stored (with its version and
current state) and answered in one transaction, or nothing is, and the rejection is kept instead.
The answer is sent only after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree
from sqlalchemy import select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.bulk import bulk_insert, insert_ids
from kit.times import utcnow
from kit.xmlsafe import UnsafeXml
from schemas.catalog import (
    APP_TYPES,
    BY_ROOT,
    ENTERPRISE_FIELDS,
    STATUS_DECLARED,
    STATUS_DELETED,
    STATUS_SAVED,
    changeable,
)

from ..audit import events as audit
from ..audit.trail import flush, note
from ..auth import Principal
from ..models import (
    Document,
    DocumentParty,
    DocumentVersion,
    Message,
    Receipt,
    Rejection,
)
from ..routing.outbox import StoredMessage, route_messages
from ..routing.table import RoutingTable
from .documents import FiledDocument
from .findings import ADDRESS_MISMATCH, MALFORMED, SCHEMA_INVALID, Finding, worst_code
from .parties import lookup, named_codes, party_findings
from .receipts import (
    DocumentReturn,
    document_fields,
    findings_text,
    message_return_xml,
    receipt_xml,
)
from .validate import Checked, check

if TYPE_CHECKING:
    from .writer import FilingWriter

log = logging.getLogger("swx.intake")

STATUS_WORDS = {STATUS_SAVED: "saved", STATUS_DECLARED: "being declared", STATUS_DELETED: "deleted"}
PRE_NO_TYPES = {"621", "623", "625", "711"}  # documents that get an e-port pre-entry number


Filing = tuple[Checked, Principal]


@dataclass(slots=True)
class Outcome:
    """The answer to one filing, in both forms the caller may ask for."""

    status: int
    body: dict
    xml: str | None  # the CEB receipt, when there is one
    receipt_type: str | None = None  # "312", …, "900"
    replay: bool = False


class IntakeService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        executor: Executor,
        max_depth: int,
        *,
        write_lock: contextlib.AbstractAsyncContextManager[Any] | None = None,
        on_commit: Callable[[], None] = lambda: None,
        routes: RoutingTable | None = None,
    ) -> None:
        self.sessions = sessions
        self.executor = executor
        self.max_depth = max_depth
        # SQLite has one writer at a time: the app's writer lock queues writers, which beats SQLite's
        # busy-wait back-off by far. On PostgreSQL there is none.
        self._write_lock = write_lock if write_lock is not None else contextlib.nullcontext()
        self._on_commit = on_commit  # wakes the ledger sequencer and the dispatcher
        self.routes = routes
        self.writer: FilingWriter | None = None  # group commit; without it each filing commits alone

    async def check(self, body: bytes, principal: Principal) -> Checked:
        """Steps 1–3 in a worker thread. Raises UnsafeXml for unreadable input."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, lambda: check(body, max_depth=self.max_depth, cop_code=principal.code, dxp_id=principal.dxp_id)
        )

    async def validate(self, body: bytes, principal: Principal) -> dict:
        """``/v1/validate``: steps 1–3 and the key checks, storing nothing."""
        checked = await self.check(body, principal)
        findings = list(checked.findings)
        if checked.mtype is not None:
            async with self.sessions() as session:
                findings += await party_findings_for(session, checked.docs)
                findings += key_findings(checked.docs, await existing_documents(session, checked.docs), principal.code)
        return {"valid": not findings, "messageType": checked.message_type, "errors": [f.as_dict() for f in findings]}

    async def file(self, body: bytes, principal: Principal) -> Outcome:
        try:
            checked = await self.check(body, principal)
        except UnsafeXml as exc:
            finding = Finding("xml", exc.code, exc.message, None, exc.line)
            outcome = malformed_outcome(finding)
            await self._keep_rejection(principal, body, None, outcome, [finding])
            return outcome
        if checked.cop_code is not None and checked.cop_code != principal.code:
            finding = next(f for f in checked.findings if f.code == ADDRESS_MISMATCH and (f.path or "").endswith("copCode"))
            outcome = foreign_sender_outcome(checked, finding)
            await self._keep_rejection(principal, checked.raw, checked, outcome, [finding])
            return outcome
        if self.writer is not None:
            return await self.writer.submit(checked, principal)
        return (await self.file_checked([(checked, principal)]))[0]

    async def file_checked(self, filings: list[Filing]) -> list[Outcome]:
        """Judge and store checked filings in one transaction, retrying a filing alone on a conflict.

        A conflict (a unique key another transaction stored between our read and our write) rolls the
        whole batch back; each of its filings then goes round again on its own and is answered from
        what is now stored.
        """
        try:
            return await self._file_batch(filings)
        except IntegrityError:
            if len(filings) > 1:
                log.info("intake batch conflict, filing one by one", extra={"filings": len(filings)})
            else:
                log.info("intake conflict, retrying", extra={"guid": filings[0][0].guid})
        outcomes = []
        for filing in filings:
            for _attempt in range(3):
                try:
                    outcomes += await self._file_batch([filing])
                    break
                except IntegrityError:
                    log.info("intake conflict, retrying", extra={"guid": filing[0].guid})
            else:
                raise RuntimeError("filing kept conflicting with concurrent filings")
        return outcomes

    async def _file_batch(self, filings: list[Filing]) -> list[Outcome]:
        async with self._write_lock, self.sessions() as session, session.begin():
            outcomes = await self._judge(session, filings)
            queued = await flush(session)
        if queued:
            self._on_commit()
        return outcomes

    async def _judge(self, session: AsyncSession, filings: list[Filing]) -> list[Outcome]:
        """Judge filings inside the transaction ``_file_batch`` opened, storing their outcomes.

        The filings of one batch have distinct guids and document keys (``FilingWriter`` sees to
        that), so each is judged against what was stored before the batch, with one query per
        step for all of them.
        """
        guids = sorted({c.guid for c, _ in filings if c.guid})
        priors: dict[str, Message] = {}
        if guids:
            if session.bind.dialect.name == "postgresql":
                # Filings of one guid take turns, so a resubmission racing its original is answered
                # as a replay rather than judged against the documents the original is storing.
                # Sorted, so that two batches never wait for each other's locks in a circle.
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(g)) FROM unnest(CAST(:gs AS text[])) AS g"), {"gs": guids}
                )
            found = await session.execute(select(Message).where(Message.guid.in_(guids)))
            priors = {m.guid: m for m in found.scalars()}
        readable = [
            d for c, _ in filings if c.guid not in priors and c.mtype is not None and not _schema_failed(c.findings)
            for d in c.docs
        ]
        registered = await lookup(session, named_codes(readable))
        stored = await existing_documents(session, readable, lock=True)
        outcomes: list[Outcome | None] = [None] * len(filings)
        accepted: list[int] = []
        for i, (checked, principal) in enumerate(filings):
            prior = priors.get(checked.guid) if checked.guid else None
            if prior is not None:
                outcomes[i] = replay_or_conflict(prior, checked)
                continue
            findings = list(checked.findings)
            if checked.mtype is not None and not _schema_failed(findings):
                findings += party_findings(checked.docs, registered)
                findings += key_findings(checked.docs, stored, principal.code)
            if findings:
                outcomes[i] = rejected_outcome(checked, findings)
                await self._store_rejection(session, principal, checked.raw, checked, outcomes[i], findings)
            else:
                accepted.append(i)
        stored_filings = await store_filings(session, [filings[i] for i in accepted], stored)
        for i, (outcome, _) in zip(accepted, stored_filings):
            outcomes[i] = outcome
        if self.routes is not None:
            await route_messages(session, self.routes, [message for _, message in stored_filings])
        return outcomes  # type: ignore[return-value]

    async def _keep_rejection(
        self, principal: Principal, raw: bytes, checked: Checked | None, outcome: Outcome, findings: list[Finding]
    ) -> None:
        async with self._write_lock, self.sessions() as session, session.begin():
            await self._store_rejection(session, principal, raw, checked, outcome, findings)
            await flush(session)
        self._on_commit()

    @staticmethod
    async def _store_rejection(
        session: AsyncSession, principal: Principal, raw: bytes, checked: Checked | None, outcome: Outcome, findings: list[Finding]
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
            http_status=outcome.status,
            findings=[f.as_dict() for f in findings],
            raw=raw,
        )
        session.add(rejection)
        await session.flush()
        readable = checked is not None and checked.mtype is not None and not any(f.layer == "schema" for f in findings)
        note(session, *audit.filing_rejected(
            sender=principal.code, guid=rejection.guid, message_type=rejection.message_type, digest=digest,
            http_status=outcome.status, codes=[f.code for f in findings], docs=checked.docs if readable else (),
        ))
        if outcome.xml is not None and principal.code:
            status = worst_code(findings)
            if outcome.receipt_type == "900":  # CEB900 carries the exchange code as a negative number
                status = "-" + status.lstrip("-")
            session.add(Receipt(
                addressee=principal.code, rejection_id=rejection.id, receipt_type=outcome.receipt_type,
                return_status=status, return_info=findings_text(findings)[:1000], xml=outcome.xml,
            ))


async def party_findings_for(session: AsyncSession, docs: list[FiledDocument]) -> list[Finding]:
    return party_findings(docs, await lookup(session, named_codes(docs)))


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


def _schema_failed(findings: list[Finding]) -> bool:
    return any(f.layer == "schema" for f in findings)


def key_findings(docs: list[FiledDocument], stored: dict[tuple[str, str], Document], caller: str | None) -> list[Finding]:
    """appType against what is stored: 1 needs a free key, 2 and 3 a key of the caller's in a changeable state."""
    findings = []
    for doc in docs:
        mt, row = doc.mtype, stored.get((doc.mtype.kind, doc.key_text))
        live = row is not None and row.status != STATUS_DELETED
        name = mt.key[-1]
        keys = ", ".join(f"{k}={v}" for k, v in zip(mt.key, doc.key))
        if doc.app_type == "1" and live:
            findings.append(Finding(
                "rule", mt.duplicate_code,
                f"a {mt.title} with {keys} has already been filed; to change it file appType 2, to withdraw it appType 3",
                doc.head.path(name), doc.head.line(name), doc.label,
            ))
        elif doc.app_type in ("2", "3"):
            verb = "change" if doc.app_type == "2" else "delete"
            if not live or (caller is not None and row.owner_code != caller):
                findings.append(Finding(
                    "rule", mt.missing_code,
                    f"there is no {mt.title} with {keys} of yours to {verb} (appType {doc.app_type}); file it first with appType 1",
                    doc.head.path("appType"), doc.head.line("appType"), doc.label,
                ))
            elif not changeable(row.kind, row.status):
                findings.append(Finding(
                    "rule", mt.state_code,
                    f"the {mt.title} with {keys} is in state {row.status} and can no longer be {verb}d",
                    doc.head.path("appType"), doc.head.line("appType"), doc.label,
                ))
    return findings


def _document_status(doc: FiledDocument) -> str:
    if doc.app_type == "3":
        return STATUS_DELETED
    return STATUS_SAVED if doc.app_status == STATUS_SAVED else STATUS_DECLARED


def _pre_no(doc: FiledDocument, row_id: int) -> str:
    customs = doc.head.text("customsCode") or "0000"
    return f"{customs[:4]:0>4}{row_id:014d}"


def document_links(doc: FiledDocument) -> tuple[str | None, dict | None]:
    """The declaration a document belongs to ("ebpCode|orderNo") and the waybill it names, if any."""
    head = doc.head
    ebp, order_no = head.text("ebpCode"), head.text("orderNo")
    order_ref = f"{ebp}|{order_no}" if ebp and order_no else None
    logistics, number = head.text("logisticsCode"), head.text("logisticsNo")
    links = {"waybill": f"{logistics}|{number}"} if logistics and number and doc.mtype.kind != "waybill" else None
    return order_ref, links


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
) -> list[tuple[Outcome, StoredMessage]]:
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
            status = _document_status(doc)
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
    results: list[tuple[Outcome, StoredMessage]] = []
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
                fields, p.status if p.status != STATUS_DELETED else STATUS_DECLARED, _return_info(doc, p.version)
            )
            returns.append(p.answer)
            answers.append({
                "index": doc.index, "kind": mt.kind, "key": dict(zip(mt.key, doc.key)), "appType": doc.app_type,
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
        results.append((Outcome(201, body, xml, mt.receipt_code), StoredMessage(
            0, checked.guid, mt.code, principal.code, checked.digest, tuple(t for p in mine for t in p.topics),
        )))
    if numbered:
        await session.execute(update(Document), numbered)
    for (_, message), id_ in zip(results, await insert_ids(session, Message.__table__, messages)):
        message.id = id_

    parties: list[tuple] = []
    versions: list[tuple] = []
    receipts: list[tuple] = []
    for (checked, principal), mine, (_, message) in zip(filings, placed, results):
        mt = checked.mtype
        for p in mine:
            doc = p.doc
            parties += [(p.id, code) for code in sorted(p.readers)]
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
    await bulk_insert(session, DocumentVersion.__table__, (
        "document_id", "version", "message_id", "position", "app_type", "app_status", "head_guid", "xml", "created_at",
    ), versions)
    await bulk_insert(session, Receipt.__table__, (
        "addressee", "message_id", "document_id", "receipt_type", "return_status", "return_info", "xml", "created_at",
    ), receipts)
    return results


def _return_info(doc: FiledDocument, version: int) -> str:
    action = APP_TYPES.get(doc.app_type, "new")
    if doc.app_type == "3":
        return f"deleted at the single window (version {version})"
    state = "saved (appStatus 1), not yet declared" if doc.app_status == STATUS_SAVED else "declared; passed to customs"
    return f"{action} {doc.mtype.title} accepted by the single window, version {version}: {state}"


def replay_or_conflict(prior: Message, checked: Checked) -> Outcome:
    if prior.digest == checked.digest:
        return Outcome(201, prior.answer, prior.answer_xml, BY_ROOT[prior.answer["messageType"]].receipt_code, replay=True)
    body = {
        "type": "about:blank", "title": "Conflict", "status": 409,
        "detail": f"a different message with guid {checked.guid} was filed at {prior.received_at.isoformat()}; "
        "every message needs its own guid (resend identical content to get the first answer again)",
        "guid": checked.guid,
    }
    return Outcome(409, body, None)


def rejected_outcome(checked: Checked, findings: list[Finding]) -> Outcome:
    body = {
        "type": "about:blank", "title": "Filing rejected", "status": 422,
        "detail": f"{len(findings)} problem(s) found; nothing was stored. Fix them all and file again.",
        "guid": checked.guid, "messageType": checked.message_type, "errors": [f.as_dict() for f in findings],
    }
    if checked.mtype is None or any(f.layer == "schema" for f in findings):
        xml = message_return_xml(findings, code=SCHEMA_INVALID, ori_message_type=checked.message_type, ori_cop_msg_id=checked.guid)
        return Outcome(422, body, xml, "900")
    return Outcome(422, body, receipt_xml(checked.mtype, _rejected_returns(checked, findings)), checked.mtype.receipt_code)


def _rejected_returns(checked: Checked, findings: list[Finding]) -> list[DocumentReturn]:
    by_doc: dict[str, list[Finding]] = {}
    for f in findings:
        by_doc.setdefault(f.document or "", []).append(f)
    general = by_doc.get("", [])
    out = []
    for doc in checked.docs:
        own = by_doc.get(doc.label, []) + general
        if own:
            status, info = worst_code(own), findings_text(own)
        else:
            status, info = worst_code(findings), "not stored: another document of this message was rejected"
        out.append(DocumentReturn(document_fields(checked.mtype, doc.head.values(), None), status, info))
    return out


def malformed_outcome(finding: Finding) -> Outcome:
    body = {
        "type": "about:blank", "title": "Malformed XML", "status": 400, "detail": finding.message,
        "errors": [finding.as_dict()],
    }
    xml = message_return_xml([finding], code=MALFORMED, ori_message_type=None, ori_cop_msg_id=None)
    return Outcome(400, body, xml, "900")


def foreign_sender_outcome(checked: Checked, finding: Finding) -> Outcome:
    body = {
        "type": "about:blank", "title": "Forbidden", "status": 403,
        "detail": finding.message, "guid": checked.guid, "errors": [finding.as_dict()],
    }
    return Outcome(403, body, None)
