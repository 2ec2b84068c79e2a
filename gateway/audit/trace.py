"""The trace (追溯) of one declaration: every ledger entry about it, in time order, each with its proof.

Found through the ledger's topics, in three hops, each one query:

1. the entries filed under ``order:{ebpCode}|{orderNo}`` -- the order, payment, list, cancellation and
   return of the declaration, and later its routes, deliveries and receipts;
2. the documents those point at (``doc:*`` topics: the waybill a list names, its status updates and
   arrival notes; on export also master bills, arrivals, departures, cancellations, returns and
   summaries, which name the waybill or the list), and the entries about them; on export, one more
   hop for the master bill (``doc:bill:*``) a 607 put the waybill under: arrivals and departures that
   name only the bill;
3. the registrations of every enterprise they name (``reg:{code}``), up to the last event of the
   declaration: the versions that were in force when it was judged.

A firm sees only the entries filed under its own codes; the operator and the regulators see them all.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ledger import Checkpoint, Ledger, parse_canonical

from .events import bill_topic, order_topic

BILL_PREFIX = bill_topic("")
MAX_ENTRIES = 2000  # per hop; a declaration has tens


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def trace(
    session: AsyncSession, ledger: Ledger, checkpoint: Checkpoint, ebp_code: str, order_no: str, visible: set[str] | None
) -> dict[str, Any]:
    """``visible``: the topics the caller may read (``party:{code}`` of its codes), or None for all."""
    size = checkpoint.size
    found = set(await ledger.indexes_for(session, [order_topic(ebp_code, order_no)], end=size, limit=MAX_ENTRIES))
    topics = await ledger.topics_of(session, found)
    docs = {t for ts in topics.values() for t in ts if t.startswith("doc:")}
    more = set(await ledger.indexes_for(session, docs, end=size, limit=MAX_ENTRIES)) - found
    topics.update(await ledger.topics_of(session, more))
    found |= more
    # export: the master bills a 607 put the declaration's waybill under, for arrivals and departures
    # that name only the bill (their other topics are other declarations' waybills: not followed)
    bills = {t for i in more for t in topics.get(i, ()) if t.startswith(BILL_PREFIX)} - docs
    if bills:
        last = set(await ledger.indexes_for(session, bills, end=size, limit=MAX_ENTRIES)) - found
        topics.update(await ledger.topics_of(session, last))
        found |= last
    declaration = await ledger.entries_at(session, found)
    parties = {t.split(":", 1)[1] for ts in topics.values() for t in ts if t.startswith("party:")}
    last_time = max((parse_canonical(e.entry)["time"] for e in declaration), default=None)
    registrations = []
    if parties and last_time is not None:
        reg = set(await ledger.indexes_for(session, [f"reg:{c}" for c in parties], end=size, limit=MAX_ENTRIES)) - found
        topics.update(await ledger.topics_of(session, reg))
        registrations = [e for e in await ledger.entries_at(session, reg) if parse_canonical(e.entry)["time"] <= last_time]
    items = []
    for e in declaration + registrations:
        if visible is not None and not topics.get(e.index, set()) & visible:
            continue
        entry = parse_canonical(e.entry)
        items.append((entry["time"], e.index, {
            "index": e.index,
            "entry": entry,
            "entryText": e.entry.decode("utf-8"),
            "leafHash": b64(e.leaf_hash),
            "proof": [b64(h) for h in await ledger.inclusion_proof(session, e.index, size)],
        }))
    items.sort(key=lambda t: (t[0], t[1]))
    return {
        "ebpCode": ebp_code,
        "orderNo": order_no,
        "treeSize": size,
        "checkpoint": checkpoint.note,
        "rootHash": b64(checkpoint.root),
        "verifierKey": ledger.verifier_key,
        "entries": [item for _, _, item in items],
    }
