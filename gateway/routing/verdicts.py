"""Regulators' receipts: checked, stored, recorded in the ledger and forwarded to the right firms.

A receipt is accepted only when it answers a document the window routed to that regulator. Customs
is the authority on a document's state: its returnStatus becomes the document's; the other
regulators' verdicts are kept beside it (``verdicts``) and all of them make the declaration's
overall state (``declarations.py``).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from lxml import etree
from sqlalchemy.ext.asyncio import AsyncSession

from kit.envelope import EnvelopeError, dxp_payload, is_envelope
from kit.times import utcnow
from kit.xmlsafe import UnsafeXml, parse_untrusted
from schemas.catalog import BY_KIND, CEB_NS, FILED, STATUS_DELETED, MessageType
from schemas.loader import ceb_schema

from ..audit import events as audit
from ..audit.events import split_topics
from ..models import Document, Receipt
from ..trail import note
from . import repository
from .errors import NotRoutedHere, ReceiptRejected, ReceiptUnmatched
from .models import RegulatorReceipt, Verdict

C = f"{{{CEB_NS}}}"
BY_RECEIPT_ROOT: dict[str, MessageType] = {m.receipt_root: m for m in FILED.values()}
TAX_BILL = "CEB816Message"
# Who reads a verdict on each kind of document, besides the firm that filed it (CEB.md §1).
ADDRESSEES: dict[str, tuple[str, ...]] = {
    "order": ("ebpCode", "ebcCode"), "payment": ("payCode",), "waybill": ("logisticsCode",),
    "waybill_status": ("logisticsCode",), "inventory": ("agentCode", "ebcCode"), "cancel": ("agentCode", "ebcCode"),
    "refund": ("agentCode", "ebcCode"), "delivery": ("operatorCode",),
}  # fmt: skip
TAX_FIELDS = ("customsTax", "valueAddedTax", "consumptionTax")


@dataclass(slots=True)
class Answer:
    """One return node of a receipt, resolved to the document it answers."""

    document: Document
    version: int  # the version it answers (a verdict on an older one changes no state)
    status: str
    info: str
    receipt_type: str
    detail: dict = field(default_factory=dict)
    invt_no: str | None = None
    node: etree._Element | None = None  # its return node (for a tax bill, its Tax element)


def read_receipt(body: bytes, max_depth: int) -> tuple[etree._Element, bytes]:
    """The CEB receipt message in ``body`` (bare or in a DxpMsg), schema-checked; its own bytes."""
    try:
        root = parse_untrusted(body, max_depth=max_depth).getroot()
        raw = body
        if is_envelope(root):
            try:
                raw = dxp_payload(root)
            except EnvelopeError as exc:
                raise ReceiptRejected(exc.message, path=exc.path) from None
            root = parse_untrusted(raw, max_depth=max_depth).getroot()
    except UnsafeXml as exc:
        raise ReceiptRejected(f"not readable XML: {exc.message}", line=exc.line) from None
    name = etree.QName(root).localname
    if etree.QName(root).namespace != CEB_NS or (name not in BY_RECEIPT_ROOT and name != TAX_BILL):
        kinds = ", ".join([*BY_RECEIPT_ROOT, TAX_BILL])
        raise ReceiptRejected(f"{name} is not a receipt a regulator sends; send one of {kinds}", path=f"/{name}")
    schema = ceb_schema()
    if not schema.validate(root):
        errors = [{"message": e.message, "line": e.line, "path": e.path} for e in schema.error_log][:20]
        raise ReceiptRejected(f"{name} does not conform to the CEB schema: {errors[0]['message']} (line {errors[0]['line']})",
                             errors=errors)
    return root, raw


async def _answers(session: AsyncSession, root: etree._Element) -> list[Answer]:
    name = etree.QName(root).localname
    if name == TAX_BILL:
        return await _tax_answers(session, root)
    mtype = BY_RECEIPT_ROOT[name]
    nodes = list(root.iterchildren(C + mtype.receipt_node))
    found = await repository.by_head_guid(session, [n.findtext(C + "guid") or "" for n in nodes])
    out = []
    for n in nodes:
        guid = n.findtext(C + "guid") or ""
        hit = found.get(guid)
        if hit is None or hit[0].kind != mtype.kind:
            raise ReceiptUnmatched(f"{mtype.receipt_node} guid {guid} answers no {mtype.title} filed at this window",
                          guid=guid, line=n.sourceline)
        invt_no = n.findtext(C + "invtNo")
        out.append(Answer(hit[0], hit[1], n.findtext(C + "returnStatus") or "", n.findtext(C + "returnInfo") or "",
                          mtype.receipt_code, invt_no=invt_no if invt_no and invt_no.strip("0") else None, node=n))
    return out


def _amount(text: str | None) -> Decimal:
    try:
        return Decimal(text or "0")
    except InvalidOperation:
        return Decimal(0)


async def _tax_answers(session: AsyncSession, root: etree._Element) -> list[Answer]:
    heads = list(root.iter(C + "TaxHeadRd"))
    numbers = {head.findtext(C + "invtNo") or "" for head in heads}
    lists = await repository.lists_by_number(session, numbers)
    out = []
    for head in heads:
        invt_no = head.findtext(C + "invtNo") or ""
        doc = lists.get(invt_no)
        if doc is None:
            raise ReceiptUnmatched(f"TaxHeadRd invtNo {invt_no} is no declaration list customs has numbered here",
                          invtNo=invt_no, line=head.sourceline)
        amounts = {f: str(_amount(head.findtext(C + f))) for f in TAX_FIELDS}
        total = sum((_amount(v) for v in amounts.values()), Decimal(0))
        detail = {**amounts, "taxTotal": str(total), "taxNo": head.findtext(C + "taxNo") or ""}
        note_text = head.findtext(C + "note") or ""
        info = f"tax bill {detail['taxNo']}: {total} assessed" + (f"; {note_text}" if note_text else "")
        out.append(Answer(doc, doc.version, "tax:" + (head.findtext(C + "status") or "1"), info, "816", detail,
                          node=head.getparent()))
    return out


def _own_part(root: etree._Element, node: etree._Element) -> str:
    """The receipt as one addressee may see it: the message with only the node about its document."""
    one = etree.Element(root.tag, dict(root.attrib), nsmap=root.nsmap)
    one.append(copy.deepcopy(node))
    return etree.tostring(one, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def _subject(doc: Document) -> dict[str, str]:
    mtype = BY_KIND[doc.kind]
    return {"doc": doc.kind, **dict(zip(mtype.key, doc.business_key.split("|")))}


def _addressees(doc: Document, receipt_type: str) -> list[str]:
    if receipt_type == "816":  # the tax bill goes to the tax guarantor
        return [c for c in (doc.parties.get("assureCode"),) if c]
    codes = [doc.owner_code, *(doc.parties.get(f) for f in ADDRESSEES.get(doc.kind, ()))]
    return list(dict.fromkeys(c for c in codes if c))


async def ingest(session: AsyncSession, regulator: str, body: bytes, *, max_depth: int) -> dict:
    """Record one receipt message from ``regulator``; its answer (``replay: true`` when its guid was seen)."""
    root, raw = read_receipt(body, max_depth)
    guid = root.get("guid") or ""
    prior = await repository.prior_receipt(session, regulator, guid)
    if prior is not None:
        return {**prior.answer, "replay": True}
    answers = await _answers(session, root)
    # Hold the documents' rows (and see their latest state): a filing changing one, or another verdict
    # on it, waits for this transaction rather than racing it.
    await repository.lock_documents(session, {a.document.id for a in answers})
    routed = await repository.routed(session, regulator, {a.document.id for a in answers})
    for a in answers:
        if a.document.id not in routed:
            raise NotRoutedHere(f"the {a.document.kind} {a.document.business_key} was never routed to {regulator}; "
                                "a regulator answers only what it was sent", document=a.document.business_key)
    digest = hashlib.sha256(raw).hexdigest()
    xml = raw.decode("utf-8", errors="replace")
    now = utcnow()
    verdicts = {v.document_id: v for v in await repository.verdicts_of(session, {a.document.id for a in answers}, regulator)}
    out = []
    for a in answers:
        doc = a.document
        topics = split_topics(doc.topics)
        verdict = verdicts.get(doc.id)
        if verdict is None:
            verdict = verdicts[doc.id] = Verdict(document_id=doc.id, regulator=regulator, version=a.version)
            session.add(verdict)
        if a.version >= verdict.version:  # a late answer about an older version does not replace a newer one
            verdict.status, verdict.info, verdict.receipt_type, verdict.version = a.status, a.info[:1000], a.receipt_type, a.version
            verdict.detail, verdict.updated_at = a.detail or None, now
        # Customs' word sets the document's state, if it is about the version in force and the filer
        # has not withdrawn the document meanwhile.
        current = a.version == doc.version and doc.status != STATUS_DELETED
        if regulator == "customs" and a.receipt_type != "816" and current:
            if a.invt_no and doc.invt_no is None:
                doc.invt_no = a.invt_no
            if doc.status != a.status:
                note(session, audit.state_change(
                    _subject(doc), actor=regulator, digest=digest, before=doc.status, after=a.status,
                    version=doc.version, topics=topics,
                ))
                doc.status, doc.updated_at = a.status, now
        note(session, audit.receipt_received(
            regulator=regulator, subject=_subject(doc), digest=digest, receipt_type=a.receipt_type, status=a.status,
            topics=topics, detail={k: a.detail[k] for k in ("taxTotal",) if k in a.detail},
        ))
        to = _addressees(doc, a.receipt_type)
        # a firm sees only the part of a receipt about its own document
        own = xml if len(answers) == 1 or a.node is None else _own_part(root, a.node)
        for code in to:
            session.add(Receipt(
                addressee=code, document_id=doc.id, regulator=regulator, receipt_type=a.receipt_type,
                return_status=a.status[:10], return_info=a.info[:1000], xml=own, created_at=now,
            ))
        note(session, audit.receipt_forwarded(
            regulator=regulator, subject=_subject(doc), digest=digest, receipt_type=a.receipt_type, addressees=to, topics=topics,
        ))
        out.append({"kind": doc.kind, "key": doc.business_key, "status": a.status, "forwardedTo": to,
                    **({"invtNo": doc.invt_no} if doc.invt_no else {})})
    # the deliveries these verdicts answer are acknowledged
    await repository.acknowledge_answered(session, regulator, [a.document.id for a in answers], now)
    answer = {"guid": guid, "receiptType": etree.QName(root).localname, "regulator": regulator, "documents": out}
    session.add(RegulatorReceipt(regulator=regulator, guid=guid, receipt_type=answer["receiptType"][3:6], digest=digest,
                                 raw=raw, answer=answer, received_at=now))
    return answer
