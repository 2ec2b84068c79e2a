"""Routing: the outbox rows written in the filing's (or registration's) own transaction.

Nothing is sent here. A delivery row exists exactly when the filing it carries does, so an
acknowledged filing can never miss a regulator; the dispatcher sends them afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from ..audit import events as audit
from ..audit.trail import note
from ..models import Message, utcnow
from ..registry.policy import SharingPolicy
from .models import Delivery
from .table import RoutingTable


def route_message(session: AsyncSession, table: RoutingTable, message: Message, topics: Iterable[str]) -> list[Delivery]:
    """One delivery per regulator the table names for the message's type."""
    regulators = table.for_message(message.message_type)
    if not regulators:
        return []
    topics = tuple(dict.fromkeys(topics))
    joined = "\n".join(topics) or None
    now = utcnow()
    rows = [
        Delivery(
            regulator=r, kind="message", message_id=message.id, message_guid=message.guid, message_type=message.message_type,
            filer=message.sender_code, topics=joined, state="pending", attempts=0, next_attempt_at=now, created_at=now,
        )
        for r in regulators
    ]
    session.add_all(rows)
    note(session, audit.message_routed(
        guid=message.guid, message_type=message.message_type, digest=message.digest, regulators=regulators, topics=topics,
    ))
    return rows


def route_registration(session: AsyncSession, policy: SharingPolicy, code: str, version: int, status: str, record: dict) -> None:
    """Each regulator the sharing policy names gets the version in its own view."""
    now = utcnow()
    topics = "\n".join((audit.reg_topic(code), audit.party_topic(code)))
    for regulator in policy.regulators:
        view = policy.view(regulator, record, code=code, version=version, status=status)
        session.add(Delivery(
            regulator=regulator, kind="registration", enterprise_code=code, version=version, body=orjson.dumps(view),
            topics=topics, state="pending", attempts=0, next_attempt_at=now, created_at=now,
        ))
