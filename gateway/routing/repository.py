"""Every query of routing: the outbox of deliveries, regulators' verdicts and receipts, declarations.

Reads that regulators and firms poll (the declaration view, the pull inbox) are index ranges; the
dispatcher's claims skip rows another dispatcher holds, and rows are always locked in id order so
two writers never wait for each other in a circle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree
from sqlalchemy import Row, Select, and_, exists, false, literal, select, tuple_, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.catalog import CEB_NS, EXPORT

from ..models import Document, DocumentParty, DocumentRef, DocumentVersion, Message, SummaryResult
from .models import Delivery, DeliveryState, RegulatorReceipt, Verdict

# ---- deliveries -----------------------------------------------------------------------------------------


async def deliveries_page(session: AsyncSession, *, after: int, limit: int, state: str | None = None,
                          regulator: str | None = None) -> list[Delivery]:
    query = select(Delivery).where(Delivery.id > after).order_by(Delivery.id).limit(limit)
    if state:
        query = query.where(Delivery.state == state)
    if regulator:
        query = query.where(Delivery.regulator == regulator)
    return list((await session.execute(query)).scalars())


async def delivery_for_update(session: AsyncSession, delivery_id: int) -> Delivery | None:
    return await session.get(Delivery, delivery_id, with_for_update=True)


async def claim_due(session: AsyncSession, regulators: list[str], now: datetime, limit: int, until: datetime) -> list[Row]:
    """Take the due pending deliveries of these regulators, oldest first: one statement counts their
    attempt and moves them ``until`` (the lease), skipping rows another dispatcher holds."""
    due = (
        select(Delivery.id)
        .where(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now, Delivery.regulator.in_(regulators))
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.execute(
        update(Delivery).where(Delivery.id.in_(due))
        .values(attempts=Delivery.attempts + 1, next_attempt_at=until)
        .returning(*Delivery.__table__.c)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed, key=lambda r: r.id)


async def delivery_states(session: AsyncSession, ids: Iterable[int]) -> dict[int, Row]:
    """The schedule of these deliveries (state, attempts, times, error), their rows held (in id order)
    until commit."""
    rows = await session.execute(
        select(Delivery.id, Delivery.state, Delivery.attempts, Delivery.next_attempt_at, Delivery.delivered_at,
               Delivery.last_error)
        .where(Delivery.id.in_(list(ids))).order_by(Delivery.id).with_for_update()
    )
    return {r.id: r for r in rows}


async def record_outcomes(session: AsyncSession, rows: list[dict]) -> None:
    """Outcomes of a round by delivery id: one statement, every row setting the same columns."""
    if rows:
        await session.execute(update(Delivery), rows)


async def inbox(session: AsyncSession, regulator: str, after: int, limit: int) -> list[Delivery]:
    """A pull regulator's pending deliveries after ``after``: a range of the partial index
    ``ix_deliveries_pending`` (regulator, id) WHERE state = 'pending', so delivered rows are never read.
    The state is written into the statement, not bound: a planner proves the index's predicate only from
    a literal (PostgreSQL's generic plans and SQLite never from a parameter)."""
    pending = literal(DeliveryState.PENDING.value, literal_execute=True)
    query = (select(Delivery).where(Delivery.regulator == regulator, Delivery.state == pending, Delivery.id > after)
             .order_by(Delivery.id).limit(limit))
    return list((await session.execute(query)).scalars())


async def pending_for_ack(session: AsyncSession, regulator: str, *, ids: list[int] | None = None,
                          up_to: int | None = None) -> list[Delivery]:
    query = select(Delivery).where(Delivery.regulator == regulator, Delivery.state == DeliveryState.PENDING)
    if up_to is not None:
        query = query.where(Delivery.id <= up_to)
    else:
        query = query.where(Delivery.id.in_(ids or []))
    return list((await session.execute(query.order_by(Delivery.id).with_for_update())).scalars())


async def messages(session: AsyncSession, ids: set[int]) -> dict[int, Row]:
    """What deliveries carry of their messages (the filed bytes and what names them), by id."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Message.id, Message.guid, Message.message_type, Message.digest, Message.raw).where(Message.id.in_(ids))
    )
    return {m.id: m for m in rows}


async def acknowledge_answered(session: AsyncSession, regulator: str, message_ids: list[int], now: datetime) -> None:
    """The regulator's deliveries of these messages are answered by a verdict (rows taken in id order,
    as the dispatcher takes them, so the two never wait for each other in a circle)."""
    answered = (
        select(Delivery.id)
        .where(Delivery.message_id.in_(message_ids), Delivery.regulator == regulator,
               Delivery.state.in_((DeliveryState.PENDING, DeliveryState.DELIVERED)))
        .order_by(Delivery.id)
        .with_for_update()
    )
    await session.execute(
        update(Delivery).where(Delivery.id.in_(answered)).values(state=DeliveryState.ACKNOWLEDGED, acknowledged_at=now)
        .execution_options(synchronize_session=False)
    )


# ---- verdicts -------------------------------------------------------------------------------------------


async def prior_receipts(session: AsyncSession, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The first answers to the receipts already recorded, by (regulator, guid)."""
    if not pairs:
        return {}
    rows = await session.execute(
        select(RegulatorReceipt.regulator, RegulatorReceipt.guid, RegulatorReceipt.answer)
        .where(tuple_(RegulatorReceipt.regulator, RegulatorReceipt.guid).in_(pairs))
    )
    return {(r, g): answer for r, g, answer in rows}


async def by_head_guid(session: AsyncSession, guids: list[str]) -> dict[str, tuple[Document, int]]:
    """Document and version number of the latest version filed with each head guid (two index
    lookups, so the plan cannot turn into a scan of the documents however stale the statistics)."""
    versions = (await session.execute(
        select(DocumentVersion.head_guid, DocumentVersion.version, DocumentVersion.document_id)
        .where(DocumentVersion.head_guid.in_(guids)).order_by(DocumentVersion.id)
    )).all()
    if not versions:
        return {}
    docs = {d.id: d for d in (await session.execute(
        select(Document).where(Document.id.in_({i for _, _, i in versions}))
    )).scalars()}
    return {g: (docs[i], v) for g, v, i in versions}


async def numbered(session: AsyncSession, kind: str, numbers: set[str]) -> dict[str, Document]:
    """The documents of ``kind`` customs numbered with these numbers (lists by ``invtNo``, export
    summaries by ``sumNo``), the first one for each number."""
    rows = await session.execute(
        select(Document).where(Document.kind == kind, Document.invt_no.in_(numbers)).order_by(Document.id)
    )
    out: dict[str, Document] = {}
    for doc in rows.scalars():
        out.setdefault(doc.invt_no, doc)
    return out


async def summary_results(session: AsyncSession, keys: set[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The stored CEB792 results with these (sumNo, declSeqNo), as rows."""
    sums = {s for s, _ in keys}
    rows = (await session.execute(select(SummaryResult).where(SummaryResult.sum_no.in_(sums)))).scalars()
    cols = ("dec_tmp_no", "dec_pre_no", "entry_id", "dec_state", "gross_weight", "net_weight", "lines")
    return {(r.sum_no, r.decl_seq_no): {c: getattr(r, c) for c in cols} for r in rows if (r.sum_no, r.decl_seq_no) in keys}


async def lock_documents(session: AsyncSession, ids: set[int]) -> None:
    """Hold the documents' rows and see their latest state (a filing changing one waits for us)."""
    await session.execute(
        select(Document).where(Document.id.in_(ids)).order_by(Document.id)
        .with_for_update().execution_options(populate_existing=True)
    )


async def set_document_states(session: AsyncSession, rows: list[dict]) -> None:
    """Documents' states (and customs' list numbers) as regulators' verdicts left them, by id."""
    if rows:
        await session.execute(update(Document), rows)


async def carriers(session: AsyncSession, document_ids: set[int]) -> dict[int, set[int]]:
    """The messages that carried each of these documents (any version), by document."""
    rows = await session.execute(
        select(DocumentVersion.document_id, DocumentVersion.message_id).where(DocumentVersion.document_id.in_(document_ids))
    )
    out: dict[int, set[int]] = {}
    for document_id, message_id in rows:
        out.setdefault(document_id, set()).add(message_id)
    return out


async def routed(session: AsyncSession, regulators: list[str], message_ids: set[int]) -> set[tuple[str, int]]:
    """Which of these messages were routed to which of these regulators (an index range on message)."""
    rows = await session.execute(
        select(Delivery.regulator, Delivery.message_id).distinct()
        .where(Delivery.message_id.in_(message_ids), Delivery.regulator.in_(regulators))
    )
    return {(r, m) for r, m in rows}


async def verdicts_of(session: AsyncSession, document_ids: set[int], regulators: list[str] | None = None) -> list[Verdict]:
    query = select(Verdict).where(Verdict.document_id.in_(document_ids))
    if regulators is not None:
        query = query.where(Verdict.regulator.in_(regulators))
    return list((await session.execute(query)).scalars())


# ---- declarations ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Declared:
    """What the declaration view reads: its documents (in id order), each one's verdicts by regulator,
    the order's XML in force, and whether one of the caller's codes is named in any of them."""

    documents: list[Document] = field(default_factory=list)
    verdicts: dict[int, dict[str, Verdict]] = field(default_factory=dict)
    xml: dict[int, str] = field(default_factory=dict)
    named: bool = False


async def declaration(session: AsyncSession, ebp_code: str, order_no: str, codes: tuple[str, ...] | None = None) -> Declared:
    """The declaration "ebpCode|orderNo" in two statements, each a UNION ALL of index ranges on constants.

    The first: the documents naming the order (``order_ref``) and the order by its key (one filed without
    an ``order_ref``). The second, for the waybill each of its lists names (``links["waybill"]``): that
    waybill, and its status updates -- keyed "logisticsCode|logisticsNo|status", i.e. the range
    (w||'|', w||'}') of the unique (kind, business_key) index. Each document is joined by primary key
    to its verdicts (unique (document_id, regulator)), an order to its version in force (unique
    (document_id, version)), and, when ``codes`` are given, an EXISTS on ``document_parties``' primary
    key answers whether one of them filed or is named in it. No OR, no LIKE: firms and regulators poll
    this view. (One statement could reach the waybills through a join on the lists' links, but the
    planner cannot estimate a range whose ends come from another row: it guessed thousands of rows, and
    planned parallel scans of the whole table and a hash of every document naming the firm.)
    """
    ref = f"{ebp_code}|{order_no}"
    out = Declared()
    await _read_declared(session, out, codes, [
        select(Document.id).where(Document.order_ref == ref),
        select(Document.id).where(Document.kind.in_(("order", "export_order")), Document.business_key == ref),
    ])
    if any(d.kind in EXPORT_KINDS for d in out.documents):
        await _export_declared(session, out, codes)
        out.documents.sort(key=lambda d: d.id)
        return out
    waybills = sorted({(d.links or {}).get("waybill") for d in out.documents if d.kind == "inventory"} - {None})
    if waybills:
        await _read_declared(session, out, codes, [branch for w in waybills for branch in (
            select(Document.id).where(Document.kind == "waybill", Document.business_key == w),
            select(Document.id).where(Document.kind == "waybill_status", Document.business_key > w + "|",
                                      Document.business_key < w + "}"),
        )])
    out.documents.sort(key=lambda d: d.id)
    return out


async def _export_declared(session: AsyncSession, out: Declared, codes: tuple[str, ...] | None) -> None:
    """An export declaration beyond its order, money received and list (CEB.md §8.2): what names the
    list's waybill or the list itself (master bills, arrivals and departures with lines, cancellations,
    returns, tallies, summaries) and the waybill; then what names the master bill those put the waybill
    under (arrivals and departures without lines). Each hop one statement on ``document_refs``' key."""
    lists = [d for d in out.documents if d.kind == "export_inventory"]
    waybills = sorted({(d.links or {}).get("waybill") for d in lists} - {None})
    refs = {f"waybill:{w}" for w in waybills} | {f"list:{d.invt_no}" for d in lists if d.invt_no}
    if not refs:
        return
    await _read_declared(session, out, codes, [
        select(DocumentRef.document_id.label("id")).where(DocumentRef.ref.in_(sorted(refs))),
        *([select(Document.id).where(Document.kind == "export_waybill", Document.business_key.in_(waybills))] if waybills else []),
    ])
    bills = {b for d in out.documents if d.kind == "export_inventory" and (b := _bill_of(out.xml.get(d.id)))}
    masters = [d.id for d in out.documents if d.kind == "consolidation"]
    if masters:
        bills |= {r[5:] for r in (await session.execute(
            select(DocumentRef.ref).where(DocumentRef.document_id.in_(masters), DocumentRef.ref > "bill:", DocumentRef.ref < "bill;")
        )).scalars()}
    if bills:
        await _read_declared(session, out, codes, [
            select(DocumentRef.document_id.label("id")).where(DocumentRef.ref.in_(sorted(f"bill:{b}" for b in bills)))])


def _bill_of(xml: str | None) -> str | None:
    if not xml:
        return None
    head = etree.fromstring(xml.encode("utf-8")).find(f"{{{CEB_NS}}}InventoryHead")  # stored by the window itself
    return (head.findtext(f"{{{CEB_NS}}}billNo") or None) if head is not None else None


# Export documents, and those whose XML in force the declaration view reads (amounts, quantities, master bill).
EXPORT_KINDS = frozenset(m.kind for m in EXPORT.values())
XML_KINDS = ("order", "export_order", "export_inventory", "export_refund", "summary")


async def _read_declared(session: AsyncSession, out: Declared, codes: tuple[str, ...] | None, branches: list[Select]) -> None:
    """The documents the ``branches`` find (ids), each with its verdicts, XML in force (orders, export
    lists, returns and summaries) and whether ``codes`` are named in it, added to ``out``; a document
    found twice is kept once."""
    ids = union_all(*branches).subquery("declared")
    named = (exists().where(DocumentParty.document_id == Document.id, DocumentParty.party_code.in_(codes))
             if codes else false())
    rows = await session.execute(
        select(Document, Verdict, DocumentVersion.xml, named.label("named"))
        .join(ids, ids.c.id == Document.id)
        .outerjoin(Verdict, Verdict.document_id == Document.id)
        .outerjoin(DocumentVersion, and_(Document.kind.in_(XML_KINDS), DocumentVersion.document_id == Document.id,
                                         DocumentVersion.version == Document.version))
    )
    seen = {d.id for d in out.documents}
    for doc, verdict, xml, is_named in rows:
        if doc.id not in seen:
            seen.add(doc.id)
            out.documents.append(doc)
        if verdict is not None:
            out.verdicts.setdefault(doc.id, {})[verdict.regulator] = verdict
        if xml is not None:
            out.xml[doc.id] = xml
        out.named = out.named or bool(is_named)


@dataclass(slots=True)
class Summarised:
    """What the summary view reads: the request's parts (with verdicts and XML), its lists and results."""

    parts: Declared
    lists: list[Document] = field(default_factory=list)
    list_verdicts: dict[int, dict[str, Verdict]] = field(default_factory=dict)
    results: list[SummaryResult] = field(default_factory=list)


async def summary(session: AsyncSession, agent_code: str, cop_no: str, codes: tuple[str, ...] | None = None) -> Summarised:
    """A 701 by (agentCode, copNo): its parts (the key range "agentCode|copNo|…"), the lists it names
    or customs' results put in it, and the results (792) under its sumNo."""
    prefix = f"{agent_code}|{cop_no}|"
    parts = Declared()
    await _read_declared(session, parts, codes, [
        select(Document.id).where(Document.kind == "summary", Document.business_key > prefix,
                                  Document.business_key < prefix[:-1] + "}"),
    ])
    out = Summarised(parts)
    sum_nos = sorted({d.invt_no for d in parts.documents if d.invt_no})
    if sum_nos:
        out.results = list((await session.execute(
            select(SummaryResult).where(SummaryResult.sum_no.in_(sum_nos)).order_by(SummaryResult.decl_seq_no)
        )).scalars())
    numbers = {n for text in parts.xml.values() for n in _invt_nos(text)}
    numbers |= {li.get("invtNo") for r in out.results for li in r.lines if li.get("invtNo")}
    if numbers:
        out.lists = list((await session.execute(
            select(Document).where(Document.kind == "export_inventory", Document.invt_no.in_(sorted(numbers)))
            .order_by(Document.id)
        )).scalars())
        for v in await verdicts_of(session, {d.id for d in out.lists}):
            out.list_verdicts.setdefault(v.document_id, {})[v.regulator] = v
    return out


def _invt_nos(xml: str) -> list[str]:
    root = etree.fromstring(xml.encode("utf-8"))  # stored by the window itself
    return [el.text for el in root.iter(f"{{{CEB_NS}}}invtNo") if el.text]
