"""Routing: the outbox rows written in the filing's (or registration's) own transaction.

Nothing is sent here. A delivery row exists exactly when the filing it carries does, so an
acknowledged filing can never miss a regulator; the dispatcher sends them afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from kit.bulk import bulk_insert
from kit.times import utcnow

from ..audit import events as audit
from ..db import Effect, touch
from ..trail import note
from .models import Delivery, DeliveryKind, DeliveryState
from .table import RoutingTable

if TYPE_CHECKING:
    from ..enterprises.sharing import SharingPolicy


@dataclass(slots=True)
class StoredMessage:
    """What routing needs of an accepted filing."""

    id: int
    guid: str
    message_type: str
    sender_code: str
    digest: str
    topics: tuple[str, ...]


async def route_messages(session: AsyncSession, table: RoutingTable, messages: Iterable[StoredMessage]) -> None:
    """One delivery per regulator the table names for each message's type, in one statement."""
    now = utcnow()
    rows = []
    for m in messages:
        regulators = table.for_message(m.message_type)
        if not regulators:
            continue
        topics = tuple(dict.fromkeys(m.topics))
        joined = "\n".join(topics) or None
        rows += [(r, DeliveryKind.MESSAGE, m.id, m.guid, m.message_type, m.sender_code, joined, DeliveryState.PENDING, 0, now, now)
                 for r in regulators]
        note(session, audit.message_routed(
            guid=m.guid, message_type=m.message_type, digest=m.digest, regulators=regulators, topics=topics,
        ))
    if rows:
        touch(session, Effect.OUTBOX)
    await bulk_insert(session, Delivery.__table__, (
        "regulator", "kind", "message_id", "message_guid", "message_type", "filer", "topics", "state", "attempts",
        "next_attempt_at", "created_at",
    ), rows)


def route_registration(session: AsyncSession, policy: SharingPolicy, code: str, version: int, status: str, record: dict) -> None:
    """Each regulator the sharing policy names gets the version in its own view."""
    now = utcnow()
    topics = "\n".join((audit.reg_topic(code), audit.party_topic(code)))
    for regulator in policy.regulators:
        view = policy.view(regulator, record, code=code, version=version, status=status)
        session.add(Delivery(
            regulator=regulator, kind=DeliveryKind.REGISTRATION, enterprise_code=code, version=version, body=orjson.dumps(view),
            topics=topics, state=DeliveryState.PENDING, attempts=0, next_attempt_at=now, created_at=now,
        ))
        touch(session, Effect.OUTBOX)  # the dispatcher sends it now, not at its next poll
