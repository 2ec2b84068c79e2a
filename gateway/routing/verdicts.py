"""Regulators' receipts: checked, stored, recorded in the ledger and forwarded to the right firms.

A receipt is accepted only when it answers a document the window routed to that regulator. Customs
is the authority on a document's state: its returnStatus becomes the document's; the other
regulators' verdicts are kept beside it (``verdicts``) and all of them make the declaration's
overall state (``declarations.py``).

Receipts are judged in batches (the group commit of ``service.VerdictService``): each step reads
what it needs for the whole batch in one query, the receipts are then applied one after the other
in memory in the order they arrived -- so a batch ends exactly as the same receipts one by one
would -- and the outcome is written with one statement per table.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from lxml import etree
from sqlalchemy.ext.asyncio import AsyncSession

from kit.bulk import bulk_insert, insert_ids, upsert
from kit.envelope import EnvelopeError, dxp_payload, is_envelope
from kit.times import utcnow
from kit.xmlsafe import UnsafeXml, parse_untrusted
from schemas.catalog import BY_KIND, CEB_NS, FILED, STATUS_DELETED, SUMMARY_RESULT_CODE, MessageType
from schemas.loader import thread_schema

from ..audit import events as audit
from ..audit.events import split_topics
from ..errors import DomainError
from ..models import Document, Message, Receipt, SummaryResult
from ..trail import note
from . import repository
from .errors import NotRoutedHere, ReceiptRejected, ReceiptUnmatched
from .models import RegulatorReceipt, Verdict
from .outbox import StoredMessage, route_messages
from .table import RoutingTable

C = f"{{{CEB_NS}}}"
BY_RECEIPT_ROOT: dict[str, MessageType] = {m.receipt_root: m for m in FILED.values()}
TAX_BILL = "CEB816Message"
SUMMARY_RESULT = f"CEB{SUMMARY_RESULT_CODE}Message"  # customs' declaration built from a summary (export)
# Customs' own messages: they answer no filing by guid, and change no document's state.
ISSUED = {TAX_BILL: "816", SUMMARY_RESULT: SUMMARY_RESULT_CODE}
# Who reads a verdict on each kind of document, besides the firm that filed it (CEB.md §1).
ADDRESSEES: dict[str, tuple[str, ...]] = {
    "order": ("ebpCode", "ebcCode"), "payment": ("payCode",), "waybill": ("logisticsCode",),
    "waybill_status": ("logisticsCode",), "inventory": ("agentCode", "ebcCode"), "cancel": ("agentCode", "ebcCode"),
    "refund": ("agentCode", "ebcCode"), "delivery": ("operatorCode",),
    "export_order": ("ebpCode", "ebcCode"), "collection": ("payCode", "ebcCode"), "export_waybill": ("logisticsCode",),
    "arrival": ("operatorCode", "logisticsCode"), "departure": ("logisticsCode",),
    "export_inventory": ("agentCode", "ebcCode", "ebpCode"), "export_cancel": ("agentCode", "ebcCode"),
    "consolidation": ("agentCode", "logisticsCode"), "export_refund": ("agentCode", "ebcCode", "ebpCode"),
    "refund_tally": ("operatorCode", "logisticsCode"), "summary": ("agentCode", "ebcCode", "declAgentCode"),
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
    if etree.QName(root).namespace != CEB_NS or (name not in BY_RECEIPT_ROOT and name not in ISSUED):
        kinds = ", ".join([*BY_RECEIPT_ROOT, *ISSUED])
        raise ReceiptRejected(f"{name} is not a receipt a regulator sends; send one of {kinds}", path=f"/{name}")
    direction = "export" if name == SUMMARY_RESULT else "import" if name == TAX_BILL else BY_RECEIPT_ROOT[name].direction
    schema = thread_schema(direction)  # called in a validation thread: its own copy
    if not schema.validate(root):
        errors = [{"message": e.message, "line": e.line, "path": e.path} for e in schema.error_log][:20]
        raise ReceiptRejected(f"{name} does not conform to the CEB schema: {errors[0]['message']} (line {errors[0]['line']})",
                             errors=errors)
    return root, raw


def _nodes(root: etree._Element) -> list[etree._Element]:
    """The return nodes of a receipt (for a tax bill, its heads)."""
    name = etree.QName(root).localname
    if name == TAX_BILL:
        return list(root.iter(C + "TaxHeadRd"))
    if name == SUMMARY_RESULT:
        return list(root.iterchildren(C + "SummaryResult"))
    return list(root.iterchildren(C + BY_RECEIPT_ROOT[name].receipt_node))


def _answers(root: etree._Element, by_guid: dict[str, tuple[Document, int]], lists: dict[str, Document]) -> list[Answer]:
    """Each return node resolved to the document (and version) it answers; ReceiptUnmatched if one answers none.

    ``lists`` holds the documents customs numbered (lists by invtNo, summaries by sumNo), for its own messages."""
    name = etree.QName(root).localname
    if name == TAX_BILL:
        return _tax_answers(root, lists)
    if name == SUMMARY_RESULT:
        return _summary_answers(root, lists)
    mtype = BY_RECEIPT_ROOT[name]
    out = []
    for n in _nodes(root):
        guid = n.findtext(C + "guid") or ""
        hit = by_guid.get(guid)
        if hit is None or hit[0].kind != mtype.kind:
            raise ReceiptUnmatched(f"{mtype.receipt_node} guid {guid} answers no {mtype.title} filed at this window",
                          guid=guid, line=n.sourceline)
        invt_no = n.findtext(C + "invtNo") or n.findtext(C + "sumNo")  # customs' number: a list's, a summary's
        out.append(Answer(hit[0], hit[1], n.findtext(C + "returnStatus") or "", n.findtext(C + "returnInfo") or "",
                          mtype.receipt_code, invt_no=invt_no if invt_no and invt_no.strip("0") else None, node=n))
    return out


def _amount(text: str | None) -> Decimal:
    try:
        return Decimal(text or "0")
    except InvalidOperation:
        return Decimal(0)


def _tax_answers(root: etree._Element, lists: dict[str, Document]) -> list[Answer]:
    out = []
    for head in _nodes(root):
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


def summary_result(node: etree._Element) -> dict:
    """One CEB792 SummaryResult as the window keeps it (``summary_results``)."""
    head = node.find(C + "SummaryResultHead")
    text = lambda name: (head.findtext(C + name) or None) if head is not None else None
    lines = [{f: li.findtext(C + f) or "" for f in ("invtNo", "logisticsNo", "gseqno", "gnum", "gcode")}
             for li in node.iterchildren(C + "SummaryResultList")]
    return {
        "sumNo": text("sumNo") or "", "declSeqNo": text("declSeqNo") or "", "decTmpNo": text("decTmpNo"),
        "decPreNo": text("decPreNo"), "entryId": text("entryId"), "decState": text("decState"),
        "grossWeight": text("grossWeight"), "netWeight": text("netWeight"), "lines": lines,
    }


def _summary_answers(root: etree._Element, summaries: dict[str, Document]) -> list[Answer]:
    out = []
    for node in _nodes(root):
        result = summary_result(node)
        doc = summaries.get(result["sumNo"])
        if doc is None or doc.kind != "summary":
            raise ReceiptUnmatched(f"SummaryResult sumNo {result['sumNo']} is no summary customs has numbered here",
                                   sumNo=result["sumNo"], line=node.sourceline)
        entry = f", entryId {result['entryId']}" if result["entryId"] else ""
        info = (f"summary {result['sumNo']} declaration {result['declSeqNo']}: {len(result['lines'])} line(s), "
                f"state {result['decState']}{entry}")
        out.append(Answer(doc, doc.version, f"792:{result['decState'] or ''}"[:10], info, SUMMARY_RESULT_CODE, result,
                          node=node))
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




@dataclass(slots=True)
class Posted:
    """A receipt message as a regulator posted it, read and schema-checked (off the event loop)."""

    regulator: str
    root: etree._Element
    raw: bytes
    guid: str
    digest: str


def posted(regulator: str, body: bytes, max_depth: int) -> Posted:
    """Read one posted receipt: ReceiptRejected when it is not a readable, valid receipt message."""
    root, raw = read_receipt(body, max_depth)
    return Posted(regulator, root, raw, root.get("guid") or "", hashlib.sha256(raw).hexdigest())


def posted_keys(p: Posted) -> frozenset[str]:
    """Two posts of one receipt never share a batch: the second is answered from the first's record."""
    return frozenset((f"{p.regulator}:{p.guid}",))


@dataclass(slots=True)
class _Verdict:
    """A regulator's word on a document while a batch is judged; ``changed`` ones are written."""

    version: int
    status: str = ""
    info: str = ""
    receipt_type: str = ""
    detail: dict | None = None
    changed: bool = False


@dataclass(slots=True)
class _Batch:
    """What a batch writes, gathered while its receipts are applied one by one."""

    now: object
    verdicts: dict[tuple[int, str], _Verdict]
    states: dict[int, tuple[str, str | None]]  # document id -> (status, invtNo) as the batch leaves them
    carriers: dict[int, set[int]]  # document id -> the messages that carried it
    changed_docs: set[int] = field(default_factory=set)
    receipts: list[tuple] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    answered: dict[str, set[int]] = field(default_factory=dict)  # regulator -> messages whose deliveries are answered
    results: list[tuple[int, str, dict]] = field(default_factory=list)  # (summary id, 792 guid, result) in arrival order
    issued: list[Posted] = field(default_factory=list)  # customs' own messages to route on


async def judge(session: AsyncSession, batch: list[Posted], routes: RoutingTable | None = None) -> list[dict | DomainError]:
    """Apply a batch of posted receipts in one transaction; per receipt, its answer or its refusal.

    A replayed receipt (its regulator and guid recorded before) is answered from its record with
    ``replay: true``. Every other one is matched to the documents it answers and checked against
    the routing; one that fails is refused alone and changes nothing.
    """
    outcomes: list[dict | DomainError | None] = [None] * len(batch)
    priors = await repository.prior_receipts(session, sorted({(p.regulator, p.guid) for p in batch}))
    fresh = []
    for i, p in enumerate(batch):
        prior = priors.get((p.regulator, p.guid))
        if prior is not None:
            outcomes[i] = {**prior, "replay": True}
        else:
            fresh.append(i)
    guids, numbers, sums = set(), set(), set()
    for i in fresh:
        root = batch[i].root
        name = etree.QName(root).localname
        if name == TAX_BILL:
            numbers.update(n.findtext(C + "invtNo") or "" for n in _nodes(root))
        elif name == SUMMARY_RESULT:
            if batch[i].regulator != "customs":
                outcomes[i] = ReceiptRejected("only customs issues a summary result (CEB792)", path=f"/{name}")
                continue
            sums.update(summary_result(n)["sumNo"] for n in _nodes(root))
        else:
            guids.update(n.findtext(C + "guid") or "" for n in _nodes(root))
    fresh = [i for i in fresh if outcomes[i] is None]
    by_guid = await repository.by_head_guid(session, sorted(guids)) if guids else {}
    lists = await repository.numbered(session, "inventory", numbers) if numbers else {}
    if sums:
        lists.update(await repository.numbered(session, "summary", sums))
    resolved: dict[int, list[Answer]] = {}
    for i in fresh:
        try:
            resolved[i] = _answers(batch[i].root, by_guid, lists)
        except DomainError as exc:
            outcomes[i] = exc
    doc_ids = {a.document.id for answers in resolved.values() for a in answers}
    if not doc_ids:
        return outcomes  # type: ignore[return-value]
    # Hold the documents' rows (and see their latest state): a filing changing one, or another verdict
    # on it, waits for this transaction rather than racing it.
    await repository.lock_documents(session, doc_ids)
    regulators = sorted({batch[i].regulator for i in resolved})
    carriers = await repository.carriers(session, doc_ids)
    routed = await repository.routed(session, regulators, {m for ms in carriers.values() for m in ms})
    stored = await repository.verdicts_of(session, doc_ids, regulators)
    work = _Batch(
        now=utcnow(),
        verdicts={(v.document_id, v.regulator): _Verdict(v.version, v.status, v.info, v.receipt_type, v.detail) for v in stored},
        states={a.document.id: (a.document.status, a.document.invt_no) for answers in resolved.values() for a in answers},
        carriers=carriers,
    )
    for i, answers in resolved.items():
        p = batch[i]
        stray = next((a for a in answers if not any((p.regulator, m) in routed for m in carriers.get(a.document.id, ()))), None)
        if stray is not None:
            outcomes[i] = NotRoutedHere(
                f"the {stray.document.kind} {stray.document.business_key} was never routed to {p.regulator}; "
                "a regulator answers only what it was sent", document=stray.document.business_key,
            )
            continue
        outcomes[i] = _apply(session, work, p, answers)
    await _write(session, work)
    await _route_issued(session, work, routes)
    return outcomes  # type: ignore[return-value]


def _apply(session: AsyncSession, work: _Batch, p: Posted, answers: list[Answer]) -> dict:
    """One receipt's effect, in memory and in the ledger trail; its answer."""
    regulator, now = p.regulator, work.now
    xml = p.raw.decode("utf-8", errors="replace")
    out = []
    for a in answers:
        doc = a.document
        topics = split_topics(doc.topics)
        verdict = work.verdicts.get((doc.id, regulator))
        if verdict is None:
            verdict = work.verdicts[(doc.id, regulator)] = _Verdict(a.version)
        if a.version >= verdict.version:  # a late answer about an older version does not replace a newer one
            verdict.status, verdict.info, verdict.receipt_type, verdict.version = a.status, a.info[:1000], a.receipt_type, a.version
            detail = {k: v for k, v in a.detail.items() if k != "lines"} if a.detail else None  # 792 lines: summary_results
            verdict.detail, verdict.changed = detail or None, True
        status, invt_no = work.states[doc.id]
        # Customs' word sets the document's state, if it is about the version in force and the filer
        # has not withdrawn the document meanwhile.
        current = a.version == doc.version and status != STATUS_DELETED
        if regulator == "customs" and a.receipt_type not in ISSUED.values() and current:
            if a.invt_no and invt_no is None:
                invt_no = a.invt_no
                work.changed_docs.add(doc.id)
                if doc.kind == "export_inventory":  # what cancellations, returns and summaries name it by, in the trace
                    doc.topics = "\n".join(dict.fromkeys([*split_topics(doc.topics), audit.list_topic(invt_no)]))
                    topics = split_topics(doc.topics)
            if status != a.status:
                note(session, audit.state_change(
                    _subject(doc), actor=regulator, digest=p.digest, before=status, after=a.status,
                    version=doc.version, topics=topics,
                ))
                status = a.status
                work.changed_docs.add(doc.id)
            work.states[doc.id] = (status, invt_no)
        note(session, audit.receipt_received(
            regulator=regulator, subject=_subject(doc), digest=p.digest, receipt_type=a.receipt_type, status=a.status,
            topics=topics, detail={k: a.detail[k] for k in ("taxTotal",) if k in a.detail},
        ))
        to = _addressees(doc, a.receipt_type)
        # a firm sees only the part of a receipt about its own document
        own = xml if len(answers) == 1 or a.node is None else _own_part(p.root, a.node)
        work.receipts += [(code, doc.id, regulator, a.receipt_type, a.status[:10], a.info[:1000], own, now) for code in to]
        note(session, audit.receipt_forwarded(
            regulator=regulator, subject=_subject(doc), digest=p.digest, receipt_type=a.receipt_type, addressees=to, topics=topics,
        ))
        out.append({"kind": doc.kind, "key": doc.business_key, "status": a.status, "forwardedTo": to,
                    **({"invtNo": invt_no} if (invt_no := work.states[doc.id][1]) else {})})
        work.answered.setdefault(regulator, set()).update(work.carriers.get(doc.id, ()))
        if a.receipt_type == SUMMARY_RESULT_CODE:
            work.results.append((doc.id, p.guid, a.detail))
    if answers and answers[0].receipt_type == SUMMARY_RESULT_CODE:
        work.issued.append(p)  # routed on to the regulators the table names for it (tax, fx)
    answer = {"guid": p.guid, "receiptType": etree.QName(p.root).localname, "regulator": regulator, "documents": out}
    work.records.append({"regulator": regulator, "guid": p.guid, "receipt_type": answer["receiptType"][3:6],
                         "digest": p.digest, "raw": p.raw, "answer": answer, "received_at": now})
    return answer


async def _write(session: AsyncSession, work: _Batch) -> None:
    """The batch's outcome, one statement per table."""
    now = work.now
    await upsert(session, Verdict.__table__, ("document_id", "regulator"), [
        {"document_id": doc_id, "regulator": regulator, "version": v.version, "status": v.status, "info": v.info,
         "receipt_type": v.receipt_type, "detail": v.detail, "updated_at": now}
        for (doc_id, regulator), v in sorted(work.verdicts.items()) if v.changed
    ])
    await repository.set_document_states(session, [
        {"id": doc_id, "status": work.states[doc_id][0], "invt_no": work.states[doc_id][1], "updated_at": now}
        for doc_id in sorted(work.changed_docs)
    ])
    await bulk_insert(session, Receipt.__table__, (
        "addressee", "document_id", "regulator", "receipt_type", "return_status", "return_info", "xml", "created_at",
    ), work.receipts)
    await insert_ids(session, RegulatorReceipt.__table__, work.records)
    await _keep_results(session, work)
    # the deliveries these verdicts answer are acknowledged
    for regulator, message_ids in sorted(work.answered.items()):
        await repository.acknowledge_answered(session, regulator, sorted(message_ids), now)


async def _keep_results(session: AsyncSession, work: _Batch) -> None:
    """The latest CEB792 per (sumNo, declSeqNo) counts (CEB.md §8.3); a later one without lines (it
    brings entryId, decState) keeps the lines and numbers an earlier one gave."""
    if not work.results:
        return
    keys = {(r["sumNo"], r["declSeqNo"]) for _, _, r in work.results}
    merged = await repository.summary_results(session, keys)
    for doc_id, guid, r in work.results:
        before = merged.get((r["sumNo"], r["declSeqNo"]), {})
        merged[(r["sumNo"], r["declSeqNo"])] = {
            "document_id": doc_id, "sum_no": r["sumNo"], "decl_seq_no": r["declSeqNo"],
            **{col: r[name] or before.get(col) for col, name in (
                ("dec_tmp_no", "decTmpNo"), ("dec_pre_no", "decPreNo"), ("entry_id", "entryId"), ("dec_state", "decState"),
                ("gross_weight", "grossWeight"), ("net_weight", "netWeight"))},
            "lines": r["lines"] or before.get("lines") or [], "receipt_guid": guid, "updated_at": work.now,
        }
    await upsert(session, SummaryResult.__table__, ("sum_no", "decl_seq_no"),
                 [merged[k] for k in sorted(keys)])


async def _route_issued(session: AsyncSession, work: _Batch, routes: RoutingTable | None) -> None:
    """Customs' summary results go on to the regulators that need them (tax refunds, FX), as messages."""
    if not work.issued or routes is None:
        return
    rows = [{"guid": p.guid, "message_type": SUMMARY_RESULT_CODE, "sender_code": p.regulator, "digest": p.digest,
             "raw": p.raw, "enveloped": False, "answer": {"issuedBy": p.regulator}, "answer_xml": "", "received_at": work.now}
            for p in work.issued]
    ids = await insert_ids(session, Message.__table__, rows)
    await route_messages(session, routes, [
        StoredMessage(id_, p.guid, SUMMARY_RESULT_CODE, p.regulator, p.digest, ()) for id_, p in zip(ids, work.issued)
    ])
