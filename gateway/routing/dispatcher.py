"""The dispatcher: takes due deliveries from the outbox, hands them to adapters, records the outcome.

Each round is three steps, so no transaction is held open while a regulator is slow:

1. claim (one short transaction): due ``pending`` deliveries of push regulators, oldest first, are
   moved ``lease`` seconds ahead and their attempt counted. On PostgreSQL the claim is
   ``FOR UPDATE SKIP LOCKED``, so any number of dispatchers (in ``swx serve`` workers and ``swx
   worker`` processes) share the work without taking the same delivery; on SQLite the app's writer
   lock serializes claims.
2. send, concurrently, through each regulator's adapter;
3. record (one transaction): delivered, or retried later with exponential back-off and jitter, or
   ``dead`` after ``max_attempts`` -- each with its ledger entry.

A dispatcher killed between 1 and 3 loses nothing: the lease runs out and the delivery is claimed
again. The regulator may then see it twice, which is why delivery is at least once and receivers
drop duplicates by message guid and document.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters import Adapter, Outcome, Outgoing, load_adapter
from adapters.backoff import backoff
from kit.envelope import dxp_envelope
from kit.times import utcnow
from kit.waits import wait_event

from ..audit import events as audit
from ..audit.events import split_topics
from ..audit.trail import flush, note
from ..models import Message
from .models import ACKNOWLEDGED, DEAD, DELIVERED, PENDING, Delivery
from .table import RoutingTable

log = logging.getLogger("swx.dispatch")


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    delivery_token: str
    public_url: str  # where the in-process stand-ins are
    timeout: float = 10.0
    lease: float = 30.0
    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_cap: float = 300.0
    batch: int = 100
    concurrency: int = 32
    poll: float = 0.5


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


def delivery_subject(d: Delivery) -> dict[str, Any]:
    if d.kind == "registration":
        return {"enterprise": d.enterprise_code, "version": d.version}
    return {"doc": "message", "messageType": d.message_type, "guid": d.message_guid}


def build_adapters(table: RoutingTable, settings: DispatchSettings) -> dict[str, Adapter]:
    """One adapter per push regulator, from the entry point its table entry names."""
    out: dict[str, Adapter] = {}
    for name, ep in table.regulators.items():
        if ep.mode != "push":
            continue
        url = ep.url or f"{settings.public_url.rstrip('/')}/mock/{name}"
        out[name] = load_adapter(ep.adapter)(url, token=settings.delivery_token, timeout=settings.timeout)
    return out


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        table: RoutingTable,
        settings: DispatchSettings,
        *,
        write_lock: contextlib.AbstractAsyncContextManager[Any] | None = None,
        on_commit: Any = lambda: None,
        adapters: dict[str, Adapter] | None = None,
    ) -> None:
        self.sessions = sessions
        self.table = table
        self.settings = settings
        self.write_lock = write_lock if write_lock is not None else contextlib.nullcontext()
        self.on_commit = on_commit
        self.adapters = adapters if adapters is not None else build_adapters(table, settings)
        self._wake = asyncio.Event()
        self._sem = asyncio.Semaphore(settings.concurrency)

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
        outcomes = await asyncio.gather(*(self._send(c) for c in claimed))
        await self._record(list(zip(claimed, outcomes)))
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        push = list(self.adapters)
        if not push:
            return []
        now = utcnow()
        async with self.write_lock, self.sessions() as session, session.begin():
            query = (
                select(Delivery)
                .where(Delivery.state == PENDING, Delivery.next_attempt_at <= now, Delivery.regulator.in_(push))
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(self.settings.batch)
                .with_for_update(skip_locked=True)
            )
            rows = list((await session.execute(query)).scalars())
            if not rows:
                return []
            messages = await _messages(session, {r.message_id for r in rows if r.message_id is not None})
            until = now + timedelta(seconds=self.settings.lease)
            out = []
            for r in rows:
                r.attempts += 1
                r.next_attempt_at = until
                item, digest = self._render(r, messages)
                out.append(Claimed(r.id, r.regulator, r.kind, r.attempts, delivery_subject(r), digest, split_topics(r.topics), item))
        return out

    async def render(self, session: AsyncSession, rows: list[Delivery]) -> list[Outgoing]:
        """What each delivery carries, as an adapter would send it (the pull inbox serves the same)."""
        messages = await _messages(session, {r.message_id for r in rows if r.message_id is not None})
        return [self._render(r, messages)[0] for r in rows]

    async def digests(self, session: AsyncSession, rows: list[Delivery]) -> dict[int, str]:
        """What each delivery's ledger entries bind: the filed message, or the view (no envelope built)."""
        messages = await _messages(session, {r.message_id for r in rows if r.message_id is not None})
        return {r.id: messages[r.message_id].digest if r.kind == "message" else audit.sha256_hex(r.body or b"{}")
                for r in rows}

    def _render(self, d: Delivery, messages: dict[int, Message]) -> tuple[Outgoing, str]:
        headers = {"X-Swx-Delivery": str(d.id)}
        if d.filer:
            headers["X-Swx-Filer"] = d.filer
        if d.kind == "message":
            m = messages[d.message_id]
            headers["X-Swx-Message-Guid"] = m.guid
            ep = self.table.regulators[d.regulator]
            body = dxp_envelope(
                m.raw, msg_type=f"CEB{m.message_type}Message", receiver_id=ep.receiver_id,
                cop_msg_id=f"{m.guid[:24]}{d.id:012d}"[-36:],
            )
            return Outgoing(d.id, d.regulator, "message", body, "application/xml", headers), m.digest
        body = d.body or b"{}"
        return Outgoing(d.id, d.regulator, "registration", body, "application/json", headers), audit.sha256_hex(body)

    async def _send(self, c: Claimed) -> Outcome:
        async with self._sem:
            try:
                return await self.adapters[c.regulator].deliver(c.item)
            except Exception as exc:
                log.exception("adapter %s failed on delivery %s", c.regulator, c.id)
                return Outcome(False, None, f"adapter error: {type(exc).__name__}: {exc}")

    async def _record(self, results: list[tuple[Claimed, Outcome]]) -> None:
        now = utcnow()
        async with self.write_lock, self.sessions() as session, session.begin():
            rows = {r.id: r for r in (await session.execute(
                select(Delivery).where(Delivery.id.in_([c.id for c, _ in results])).order_by(Delivery.id).with_for_update()
            )).scalars()}
            for c, outcome in results:
                row = rows.get(c.id)
                if row is None or row.state not in (PENDING, ACKNOWLEDGED) or (row.state == ACKNOWLEDGED and not outcome.ok):
                    continue  # finished meanwhile (a verdict may come back before the regulator's 2xx does)
                common: dict[str, Any] = {
                    "delivery_id": c.id, "regulator": c.regulator, "subject": c.subject, "digest": c.digest,
                    "attempt": c.attempt, "topics": c.topics, "status": outcome.status,
                }
                if outcome.ok and row.state == ACKNOWLEDGED:
                    row.delivered_at = row.delivered_at or now
                    note(session, audit.delivery_event(audit.DELIVERY_DELIVERED, **common))
                    continue
                if outcome.ok:
                    row.state, row.delivered_at, row.last_error = DELIVERED, now, None
                    note(session, audit.delivery_event(audit.DELIVERY_DELIVERED, **common))
                    continue
                if row.attempts != c.attempt:
                    continue  # a later claim (after our lease ran out) owns the schedule now
                row.last_error = outcome.error
                if row.attempts >= self.settings.max_attempts:
                    row.state = DEAD
                    note(session, audit.delivery_event(audit.DELIVERY_DEAD, error=outcome.error, **common))
                    log.warning("delivery %s to %s is dead after %s attempts: %s", c.id, c.regulator, row.attempts, outcome.error)
                else:
                    wait = backoff(row.attempts, base=self.settings.backoff_base, cap=self.settings.backoff_cap)
                    row.next_attempt_at = now + timedelta(seconds=wait)
                    note(session, audit.delivery_event(audit.DELIVERY_ATTEMPTED, error=outcome.error, **common))
            await flush(session)
        self.on_commit()

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


async def _messages(session: AsyncSession, ids: set[int]) -> dict[int, Message]:
    if not ids:
        return {}
    rows = await session.execute(select(Message).where(Message.id.in_(ids)))
    return {m.id: m for m in rows.scalars()}
