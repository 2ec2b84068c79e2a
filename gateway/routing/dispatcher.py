"""The dispatcher: takes due deliveries from the outbox, hands them to adapters, records the result.

Each round is three steps, so no transaction is held open while a regulator is slow:

1. claim (one short transaction, one statement): up to ``batch`` due ``pending`` deliveries of push
   regulators, oldest first, are moved ``lease`` seconds ahead and their attempt counted, and come
   back with the messages they carry (a second query). On PostgreSQL the claim skips locked rows
   (``FOR UPDATE SKIP LOCKED``), so any number of dispatchers (in ``swx serve`` workers and ``swx
   worker`` processes) share the work without taking the same delivery; on SQLite the writer lock
   of the unit of work (gateway/db.py) serializes claims.
2. send, concurrently, through each regulator's adapter (kept-alive connections; HTTP/2 where the
   regulator offers it);
3. record (one transaction): delivered, or retried later with exponential back-off and jitter, or
   ``dead`` after ``max_attempts`` -- each with its ledger entry; the rows are read (and held) in one
   statement and written in one.

A dispatcher killed between 1 and 3 loses nothing: the lease runs out and the delivery is claimed
again. The regulator may then see it twice, which is why delivery is at least once and receivers
drop duplicates by message guid and document.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from adapters import Adapter, AdapterSettings, DeliveryResult, Outgoing, load_adapter
from adapters.backoff import backoff
from kit.envelope import dxp_envelope
from kit.times import utcnow
from kit.waits import wait_event
from schemas.catalog import CUSTOMS_RECEIVERS, EXPORT, SUMMARY_RESULT_CODE

from ..audit import events as audit
from ..audit.events import split_topics
from ..config import Settings
from ..db import Database, Effect
from ..trail import note
from . import repository
from .models import Delivery, DeliveryKind, DeliveryState
from .table import DeliveryMode, RoutingTable

log = logging.getLogger("swx.dispatch")


def _exported(message_type: str) -> bool:
    return message_type in EXPORT or message_type == SUMMARY_RESULT_CODE


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    delivery_token: str
    regulators_url: str  # where regulators whose route names no url are: {regulators_url}/{name}
    timeout: float = 10.0
    lease: float = 30.0
    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_cap: float = 300.0
    batch: int = 100
    concurrency: int = 32
    poll: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings, token: str) -> DispatchSettings:
        return cls(
            delivery_token=token, regulators_url=settings.regulators_base(), timeout=settings.delivery_timeout,
            lease=settings.delivery_timeout * 3, max_attempts=settings.delivery_max_attempts,
            backoff_base=settings.delivery_backoff, backoff_cap=settings.delivery_backoff_cap,
            concurrency=settings.delivery_concurrency,
        )


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    regulator: str
    kind: str
    attempt: int
    subject: dict[str, Any]
    digest: str
    topics: tuple[str, ...]
    item: Outgoing


def delivery_subject(d: Delivery | Row) -> dict[str, Any]:
    if d.kind == DeliveryKind.REGISTRATION:
        return {"enterprise": d.enterprise_code, "version": d.version}
    return {"doc": "message", "messageType": d.message_type, "guid": d.message_guid}


def build_adapters(table: RoutingTable, settings: DispatchSettings) -> dict[str, Adapter]:
    """One adapter per push regulator, from the entry point its table entry names."""
    common = AdapterSettings(token=settings.delivery_token, timeout=settings.timeout, connections=settings.concurrency)
    return {
        name: load_adapter(route.adapter)(route.endpoint(settings.regulators_url), common)
        for name, route in table.regulators.items() if route.mode == DeliveryMode.PUSH
    }


class Dispatcher:
    def __init__(
        self, db: Database, table: RoutingTable, settings: DispatchSettings, *, adapters: dict[str, Adapter] | None = None,
    ) -> None:
        self.db = db
        self.table = table
        self.settings = settings
        self.adapters = adapters if adapters is not None else build_adapters(table, settings)
        self._wake = asyncio.Event()
        self._sem = asyncio.Semaphore(settings.concurrency)
        db.on_commit(Effect.OUTBOX, self.notify)

    def notify(self) -> None:
        self._wake.set()

    async def aclose(self) -> None:
        for a in self.adapters.values():
            await a.aclose()

    # -- one round ------------------------------------------------------------------------------------

    async def dispatch_once(self) -> int:
        claimed = await self._claim()
        if not claimed:
            return 0
        results = await asyncio.gather(*(self._send(c) for c in claimed))
        await self._record(list(zip(claimed, results)))
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        push = list(self.adapters)
        if not push:
            return []
        now = utcnow()
        async with self.db.write() as session:
            rows = await repository.claim_due(session, push, now, self.settings.batch, now + timedelta(seconds=self.settings.lease))
            if not rows:
                return []
            messages = await repository.messages(session, {r.message_id for r in rows if r.message_id is not None})
        out = []
        for r in rows:
            item, digest = self._render(r, messages)
            out.append(Claimed(r.id, r.regulator, r.kind, r.attempts, delivery_subject(r), digest, split_topics(r.topics), item))
        return out

    async def render(self, session: AsyncSession, rows: list[Delivery]) -> list[Outgoing]:
        """What each delivery carries, as an adapter would send it (the pull inbox serves the same)."""
        messages = await repository.messages(session, {r.message_id for r in rows if r.message_id is not None})
        return [self._render(r, messages)[0] for r in rows]

    async def digests(self, session: AsyncSession, rows: list[Delivery]) -> dict[int, str]:
        """What each delivery's ledger entries bind: the filed message, or the view (no envelope built)."""
        messages = await repository.messages(session, {r.message_id for r in rows if r.message_id is not None})
        return {r.id: messages[r.message_id].digest if r.kind == DeliveryKind.MESSAGE else audit.sha256_hex(r.body or b"{}")
                for r in rows}

    def _render(self, d: Delivery | Row, messages: dict[int, Row]) -> tuple[Outgoing, str]:
        headers = {"X-Swx-Delivery": str(d.id)}
        if d.filer:
            headers["X-Swx-Filer"] = d.filer
        if d.kind == DeliveryKind.MESSAGE:
            m = messages[d.message_id]
            headers["X-Swx-Message-Guid"] = m.guid
            ep = self.table.regulators[d.regulator]
            receiver = ep.receiver_id
            if receiver == CUSTOMS_RECEIVERS["import"] and _exported(m.message_type):
                receiver = CUSTOMS_RECEIVERS["export"]  # customs takes export at its export receiver (CEB.md §6)
            body = dxp_envelope(
                m.raw, msg_type=f"CEB{m.message_type}Message", receiver_id=receiver,
                cop_msg_id=f"{m.guid[:24]}{d.id:012d}"[-36:],
            )
            return Outgoing(d.id, d.regulator, DeliveryKind.MESSAGE, body, "application/xml", headers), m.digest
        body = d.body or b"{}"
        return Outgoing(d.id, d.regulator, DeliveryKind.REGISTRATION, body, "application/json", headers), audit.sha256_hex(body)

    async def _send(self, c: Claimed) -> DeliveryResult:
        async with self._sem:
            try:
                return await self.adapters[c.regulator].deliver(c.item)
            except Exception as exc:
                log.exception("adapter %s failed on delivery %s", c.regulator, c.id)
                return DeliveryResult(False, None, f"adapter error: {type(exc).__name__}: {exc}")

    async def _record(self, results: list[tuple[Claimed, DeliveryResult]]) -> None:
        now = utcnow()
        async with self.db.write() as session:
            rows = await repository.delivery_states(session, [c.id for c, _ in results])
            changes = []
            for c, result in results:
                row = rows.get(c.id)
                answered = row is not None and row.state == DeliveryState.ACKNOWLEDGED
                if row is None or row.state not in (DeliveryState.PENDING, DeliveryState.ACKNOWLEDGED) or (answered and not result.ok):
                    continue  # finished meanwhile (a verdict may come back before the regulator's 2xx does)
                common: dict[str, Any] = {
                    "delivery_id": c.id, "regulator": c.regulator, "subject": c.subject, "digest": c.digest,
                    "attempt": c.attempt, "topics": c.topics, "status": result.status,
                }
                change = {"id": c.id, "state": row.state, "next_attempt_at": row.next_attempt_at,
                          "delivered_at": row.delivered_at, "last_error": row.last_error}
                if result.ok:
                    # answered already: it stays acknowledged, and is now also known as delivered
                    change.update(delivered_at=row.delivered_at or now)
                    if not answered:
                        change.update(state=DeliveryState.DELIVERED, last_error=None)
                    note(session, audit.delivery_event(audit.DELIVERY_DELIVERED, **common))
                elif row.attempts != c.attempt:
                    continue  # a later claim (after our lease ran out) owns the schedule now
                elif row.attempts >= self.settings.max_attempts:
                    change.update(state=DeliveryState.DEAD, last_error=result.error)
                    note(session, audit.delivery_event(audit.DELIVERY_DEAD, error=result.error, **common))
                    log.warning("delivery %s to %s is dead after %s attempts: %s", c.id, c.regulator, row.attempts, result.error)
                else:
                    wait = backoff(row.attempts, base=self.settings.backoff_base, cap=self.settings.backoff_cap)
                    change.update(last_error=result.error, next_attempt_at=now + timedelta(seconds=wait))
                    note(session, audit.delivery_event(audit.DELIVERY_ATTEMPTED, error=result.error, **common))
                changes.append(change)
            await repository.record_outcomes(session, changes)

    # -- the loop ---------------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        """Dispatch until cancelled: at once while there is work, else when woken or every ``poll`` seconds."""
        delay = self.settings.poll
        while True:
            try:
                n = await self.dispatch_once()
                delay = self.settings.poll
                if n:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch round failed; retrying")
                delay = min(delay * 2, 30.0)
            await wait_event(self._wake, delay)
            self._wake.clear()

