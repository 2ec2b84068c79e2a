"""Split filings (CEB.md §8.3): a 507, 509, 607 or 701 may come in ``msgCount`` parts; none is routed
to a regulator until every part has arrived.

Each part is its own document (its key ends in ``msgSeqNo``), accepted and answered as it comes; what
waits is routing. When the filing that completes a group is stored, the messages of every part of the
group not yet routed are routed with it, in the same transaction. On PostgreSQL the groups being
completed take turns (an advisory lock per group, taken before the parts are counted), so two last
parts arriving at once cannot each see the other missing; SQLite writers take turns anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.catalog import STATUS_DELETED
from schemas.documents import FiledDocument

from ..models import Document, DocumentVersion, Message
from ..routing.models import Delivery
from ..routing.outbox import StoredMessage


def group_of(doc: FiledDocument) -> tuple[str, str, int] | None:
    """(kind, key prefix shared by the parts, msgCount) of a split document; None for one not split."""
    if not doc.mtype.split:
        return None
    try:
        count = int(doc.head.text("msgCount") or "1")
    except ValueError:
        count = 1
    prefix = "|".join(doc.key[:-1]) + "|"  # the key is (filer, copNo, msgSeqNo)
    return doc.mtype.kind, prefix, count


def part_words(doc: FiledDocument) -> str:
    """What the answer to one part says about the rest."""
    group = group_of(doc)
    if group is None or group[2] <= 1:
        return ""
    return f"; part {doc.head.text('msgSeqNo')} of {group[2]}: processed once every part is in"


async def _lock(session: AsyncSession, names: list[str]) -> None:
    if session.bind.dialect.name == "postgresql" and names:
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(g)) FROM unnest(CAST(:gs AS text[])) AS g"), {"gs": sorted(names)}
        )


async def ready_messages(
    session: AsyncSession, stored: Iterable[tuple[list[FiledDocument], StoredMessage]]
) -> list[StoredMessage]:
    """The messages to route now: every message without split parts, and, for each group of parts that
    is now complete, every message carrying one of its parts that has not been routed yet."""
    ready: list[StoredMessage] = []
    groups: dict[tuple[str, str], int] = {}
    for docs, message in stored:
        split = [g for d in docs if (g := group_of(d)) is not None]
        if not split:
            ready.append(message)
            continue
        for kind, prefix, count in split:
            groups[(kind, prefix)] = max(count, groups.get((kind, prefix), 0))
    if not groups:
        return ready
    await _lock(session, [f"parts:{kind}:{prefix}" for kind, prefix in groups])
    members: dict[tuple[str, str], dict[int, int]] = {g: {} for g in groups}  # group -> msgSeqNo -> message id
    for (kind, prefix) in groups:
        rows = await session.execute(
            select(Document.business_key, DocumentVersion.message_id)
            .join(DocumentVersion, (DocumentVersion.document_id == Document.id) & (DocumentVersion.version == Document.version))
            .where(Document.kind == kind, Document.business_key > prefix, Document.business_key < prefix[:-1] + "}",
                   Document.status != STATUS_DELETED)
        )
        for key, message_id in rows:
            seq = key[len(prefix):]
            if seq.isdigit():
                members[(kind, prefix)][int(seq)] = message_id
    wanted: set[int] = set()
    for group, count in groups.items():
        parts = members[group]
        if set(parts) >= set(range(1, count + 1)):
            wanted.update(parts[i] for i in range(1, count + 1))
    if not wanted:
        return ready
    routed = set((await session.execute(
        select(Delivery.message_id).where(Delivery.message_id.in_(wanted)).distinct()
    )).scalars())
    todo = sorted(wanted - routed - {m.id for m in ready})
    if not todo:
        return ready
    rows = await session.execute(
        select(Message.id, Message.guid, Message.message_type, Message.sender_code, Message.digest).where(Message.id.in_(todo))
    )
    topics = await _message_topics(session, todo)
    for id_, guid, message_type, sender, digest in rows:
        ready.append(StoredMessage(id_, guid, message_type, sender, digest, topics.get(id_, ())))
    return ready


async def _message_topics(session: AsyncSession, message_ids: list[int]) -> dict[int, tuple[str, ...]]:
    rows = await session.execute(
        select(DocumentVersion.message_id, Document.topics)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(DocumentVersion.message_id.in_(message_ids))
    )
    out: dict[int, list[str]] = {}
    for message_id, topics in rows:
        out.setdefault(message_id, []).extend((topics or "").split("\n"))
    return {k: tuple(dict.fromkeys(t for t in v if t)) for k, v in out.items()}
