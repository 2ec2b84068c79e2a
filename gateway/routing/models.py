"""The outbox of deliveries to regulators, their verdicts, and the receipts they sent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kit.times import utcnow

from ..models import Base, Id


class DeliveryState(StrEnum):
    """Waiting to go (or to be pulled), handed over, answered by a verdict, given up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    ACKNOWLEDGED = "acknowledged"
    DEAD = "dead"


class DeliveryKind(StrEnum):
    MESSAGE = "message"  # a filed CEB message, sent in a DxpMsg
    REGISTRATION = "registration"  # a registration version, in the regulator's view (JSON)


class Delivery(Base):
    """One message (or registration version) for one regulator, written with the filing it carries.

    ``next_attempt_at`` is both the schedule and the lease: a dispatcher that takes a delivery moves it
    ``lease`` seconds ahead before sending, so a dispatcher killed mid-delivery only delays it.
    Whether it is pushed or pulled is the routing table's say at the time, not stored here.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        Index("ix_deliveries_regulator_id", "regulator", "id"),
        # the pull inbox: a regulator's pending rows in id order, without reading its delivered ones
        Index("ix_deliveries_pending", "regulator", "id",
              postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    regulator: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(12))  # "message" or "registration"
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    message_guid: Mapped[str | None] = mapped_column(String(36))
    message_type: Mapped[str | None] = mapped_column(String(3))
    filer: Mapped[str | None] = mapped_column(String(18))
    enterprise_code: Mapped[str | None] = mapped_column(String(18))
    version: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)  # registrations: the view; messages are read from ``messages``
    topics: Mapped[str | None] = mapped_column(Text)  # ledger topics of its events
    state: Mapped[str] = mapped_column(String(12), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]


class Verdict(Base):
    """A regulator's latest word on one document: the receipt status and why."""

    __tablename__ = "verdicts"
    __table_args__ = (UniqueConstraint("document_id", "regulator"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    regulator: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)  # the document version it answers
    status: Mapped[str] = mapped_column(String(10))
    info: Mapped[str] = mapped_column(Text)
    receipt_type: Mapped[str] = mapped_column(String(3))
    detail: Mapped[dict | None] = mapped_column(JSON)  # e.g. the assessed tax
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RegulatorReceipt(Base):
    """A receipt message as a regulator sent it, once (its guid makes resending harmless)."""

    __tablename__ = "regulator_receipts"
    __table_args__ = (UniqueConstraint("regulator", "guid"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    regulator: Mapped[str] = mapped_column(String(20))
    guid: Mapped[str] = mapped_column(String(36))
    receipt_type: Mapped[str] = mapped_column(String(3))
    digest: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    answer: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
