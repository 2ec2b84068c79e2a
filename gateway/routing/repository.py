"""Every query of routing: the outbox of deliveries, regulators' verdicts and receipts, declarations.

Reads that regulators and firms poll (the declaration view, the pull inbox) are index ranges; the
dispatcher's claims skip rows another dispatcher holds, and rows are always locked in id order so
two writers never wait for each other in a circle.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Row, and_, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Document, DocumentParty, DocumentVersion, Message
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
    query = (select(Delivery).where(Delivery.regulator == regulator, Delivery.state == DeliveryState.PENDING, Delivery.id > after)
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


async def lists_by_number(session: AsyncSession, numbers: set[str]) -> dict[str, Document]:
    """The declaration lists customs numbered ``invtNo``, the first one for each number."""
    rows = await session.execute(
        select(Document).where(Document.kind == "inventory", Document.invt_no.in_(numbers)).order_by(Document.id)
    )
    lists: dict[str, Document] = {}
    for doc in rows.scalars():
        lists.setdefault(doc.invt_no, doc)
    return lists


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


async def declaration_documents(session: AsyncSession, ebp_code: str, order_no: str) -> list[Document]:
    """Each lookup is an index range (no OR, no LIKE): the view is read often, by firms and by regulators."""
    ref = f"{ebp_code}|{order_no}"
    docs = list((await session.execute(select(Document).where(Document.order_ref == ref))).scalars())
    if not any(d.kind == "order" for d in docs):
        docs += (await session.execute(
            select(Document).where(Document.kind == "order", Document.business_key == ref)
        )).scalars()
    waybills = sorted({(d.links or {}).get("waybill") for d in docs if d.kind == "inventory"} - {None})
    for w in waybills:
        docs += (await session.execute(select(Document).where(Document.kind == "waybill", Document.business_key == w))).scalars()
        # its status updates: keys "logisticsCode|logisticsNo|status", i.e. the range just above "w|"
        docs += (await session.execute(select(Document).where(
            Document.kind == "waybill_status", Document.business_key > w + "|", Document.business_key < w + "}",
        ))).scalars()
    return sorted({d.id: d for d in docs}.values(), key=lambda d: d.id)


async def names_any(session: AsyncSession, docs: list[Document], codes: tuple[str, ...]) -> bool:
    """Whether one of ``codes`` filed, or is named in, one of ``docs``."""
    if not docs or not codes:
        return False
    hit = await session.execute(
        select(DocumentParty.document_id).where(
            DocumentParty.document_id.in_([d.id for d in docs]), DocumentParty.party_code.in_(codes)
        ).limit(1)
    )
    return hit.first() is not None


async def current_xml(session: AsyncSession, docs: list[Document]) -> list[tuple[int, str]]:
    """The XML of each document's version in force."""
    if not docs:
        return []
    rows = await session.execute(
        select(DocumentVersion.document_id, DocumentVersion.xml).where(
            or_(*[and_(DocumentVersion.document_id == d.id, DocumentVersion.version == d.version) for d in docs])
        )
    )
    return [(doc_id, xml) for doc_id, xml in rows]
