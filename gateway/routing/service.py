"""The operator's and the regulators' hands on the outbox: list, retry, read an inbox, acknowledge; and
the regulators' receipts, stored by group commit.

Endpoints stay thin: each of these runs inside the request's unit of work and writes its ledger
entries there; a retry marks the outbox so the dispatcher sends at once. Receipts are read and
schema-checked in the validation threads and then judged in batches (``VerdictService``).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.groupcommit import GroupCommit
from kit.times import iso, utcnow

from ..audit import events as audit
from ..audit.events import split_topics
from ..auth import Principal, regulator_named, require_operator, require_regulator
from ..db import Database, Effect, touch
from ..errors import DomainError
from ..metrics import RECEIPT_BATCH
from ..trail import note
from . import repository
from .dispatcher import Dispatcher, delivery_subject
from .errors import DeliveryNotFound, NothingToAcknowledge, NotRetryable, NotYourRegulator, PushRegulator, UnknownState
from .models import Delivery, DeliveryState
from .table import DeliveryMode, RoutingTable
from .verdicts import Posted, judge, posted, posted_keys

log = logging.getLogger("swx.routing")


def delivery_out(d: Delivery) -> dict:
    return {
        "id": d.id, "regulator": d.regulator, "kind": d.kind, "state": d.state, "attempts": d.attempts,
        "messageGuid": d.message_guid, "messageType": d.message_type, "filer": d.filer,
        "enterprise": d.enterprise_code, "version": d.version, "lastError": d.last_error,
        "nextAttemptAt": iso(d.next_attempt_at) if d.state == DeliveryState.PENDING else None,
        "createdAt": iso(d.created_at), "deliveredAt": iso(d.delivered_at), "acknowledgedAt": iso(d.acknowledged_at),
    }


def own_regulator(caller: Principal, name: str) -> None:
    """The operator, or the regulator ``name`` itself."""
    regulator_named(name)
    if caller.is_operator:
        return
    require_regulator(caller)
    if caller.regulator != name:
        raise NotYourRegulator(f"this key belongs to {caller.regulator}, not {name}")


async def deliveries(session: AsyncSession, caller: Principal, *, state: str | None, regulator: str | None,
                     after: int, limit: int) -> dict:
    """A page of deliveries: every one for the operator, its own for a regulator."""
    if caller.is_regulator:
        regulator = caller.regulator
    else:
        require_operator(caller)
    if state is not None and state not in tuple(DeliveryState):
        raise UnknownState(f"state must be one of {', '.join(DeliveryState)}", field="state")
    rows = [delivery_out(d) for d in await repository.deliveries_page(session, after=after, limit=limit, state=state,
                                                                       regulator=regulator)]
    return {"deliveries": rows, "next": rows[-1]["id"] if rows else after}


async def retry(session: AsyncSession, delivery_id: int) -> dict:
    """A dead (or still pending) delivery goes out again at once, its attempts counted afresh."""
    d = await repository.delivery_for_update(session, delivery_id)
    if d is None:
        raise DeliveryNotFound(f"no delivery {delivery_id}")
    if d.state not in (DeliveryState.DEAD, DeliveryState.PENDING):
        raise NotRetryable(f"delivery {delivery_id} is {d.state}; only dead or pending deliveries are retried")
    previous = d.state
    d.state, d.attempts, d.next_attempt_at = DeliveryState.PENDING, 0, utcnow()
    note(session, audit.delivery_event(
        audit.DELIVERY_RETRIED, delivery_id=d.id, regulator=d.regulator, subject=delivery_subject(d),
        digest=audit.sha256_hex(f"retry:{d.id}:{previous}".encode()), attempt=0, topics=split_topics(d.topics),
    ))
    touch(session, Effect.OUTBOX)
    return delivery_out(d)


def _pull_only(routes: RoutingTable, name: str) -> None:
    route = routes.regulators.get(name)
    if route is None or route.mode != DeliveryMode.PULL:
        raise PushRegulator(f"{name} is served by push; set mode = \"pull\" in the routing table to read an inbox")


async def inbox(session: AsyncSession, routes: RoutingTable, dispatcher: Dispatcher, name: str, after: int, limit: int) -> dict:
    """What waits for a pull regulator, each item with the body an adapter would have sent."""
    _pull_only(routes, name)
    rows = await repository.inbox(session, name, after, limit)
    rendered = await dispatcher.render(session, rows)
    items = [{**delivery_out(d), "contentType": item.content_type, "body": item.body.decode("utf-8")}
             for d, item in zip(rows, rendered)]
    return {"items": items, "next": items[-1]["id"] if items else after}


async def acknowledge(session: AsyncSession, dispatcher: Dispatcher, name: str, ids: list[int], up_to: int | None) -> dict:
    """A pull regulator confirms what it read: those deliveries are delivered, each with its ledger entry."""
    if up_to is None and not ids:
        raise NothingToAcknowledge("give ids or upTo", field="ids")
    rows = await repository.pending_for_ack(session, name, ids=ids, up_to=up_to)
    digests = await dispatcher.digests(session, rows)
    now = utcnow()
    for d in rows:
        d.state, d.delivered_at, d.attempts = DeliveryState.DELIVERED, now, d.attempts + 1
        note(session, audit.delivery_event(
            audit.DELIVERY_DELIVERED, delivery_id=d.id, regulator=name, subject=delivery_subject(d), digest=digests[d.id],
            attempt=d.attempts, topics=split_topics(d.topics),
        ))
    return {"acknowledged": [d.id for d in rows]}


class VerdictService:
    """Regulators' receipts: read off the event loop, then judged and stored in batches (group commit).

    Each regulator is answered only after the commit that stored its receipt. A conflict with a
    concurrent transaction (the same receipt posted to two window processes at once) rolls the batch
    back; its receipts then go round again one by one and are answered from what is now stored.
    """

    def __init__(self, db: Database, executor: Executor, max_depth: int, *, writers: int = 1, max_batch: int = 32,
                 routes: RoutingTable | None = None) -> None:
        self.db = db
        self.routes = routes  # customs' own messages (CEB792) are routed on as its table says
        self.executor = executor
        self.max_depth = max_depth
        self.writer: GroupCommit[Posted, dict] = GroupCommit(
            self.store, keys=posted_keys, writers=writers, max_batch=max_batch, name="receipts", observe=RECEIPT_BATCH.observe,
        )

    async def ingest(self, regulator: str, body: bytes) -> dict:
        """One posted receipt message: its answer (``replay: true`` when its guid was recorded before)."""
        loop = asyncio.get_running_loop()
        item = await loop.run_in_executor(self.executor, posted, regulator, body, self.max_depth)
        return await self.writer.submit(item)

    async def store(self, batch: list[Posted]) -> list[dict | DomainError]:
        try:
            return await self._store(batch)
        except IntegrityError:
            log.info("receipt batch conflict, storing one by one", extra={"receipts": len(batch)})
        outcomes: list[dict | DomainError] = []
        for item in batch:
            for _attempt in range(3):
                try:
                    outcomes += await self._store([item])
                    break
                except IntegrityError:
                    log.info("receipt conflict, retrying", extra={"guid": item.guid})
            else:
                raise RuntimeError("receipt kept conflicting with concurrent receipts")
        return outcomes

    async def _store(self, batch: list[Posted]) -> list[dict | DomainError]:
        async with self.db.write() as session:
            return await judge(session, batch, self.routes)
