"""Getting events into the ledger with the change they record: noted on the session, queued at commit.

Part of the unit of work (``gateway/db.py`` flushes it before every commit); the events themselves are
built in ``gateway/audit/events.py``.

Business code calls ``note(session, event)`` wherever something happens (plain, synchronous); the
code that owns the transaction calls ``await flush(session)`` just before it commits, which queues
every noted event in ``ledger_pending`` in that same transaction, so an event exists exactly when
its change does. A commit with events noted but not flushed is refused, so none can be dropped by a
write path that forgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ledger import submit_many

if TYPE_CHECKING:
    from .audit.events import Event

_KEY = "swx.audit.events"


def note(session: AsyncSession | Session, *events: Event) -> None:
    session.info.setdefault(_KEY, []).extend(events)


async def flush(session: AsyncSession) -> int:
    """Queue the noted events in the session's transaction; returns how many."""
    events: list[Event] = session.info.pop(_KEY, [])
    if events:
        await submit_many(session, [(e.entry, e.topics) for e in events])
    return len(events)


@sa_event.listens_for(Session, "before_commit")
def _refuse_unflushed(session: Session) -> None:
    if session.info.get(_KEY):
        raise RuntimeError("audit events were noted in this transaction but not flushed to the ledger")


@sa_event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_KEY, None)
