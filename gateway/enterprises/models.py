"""Every version of every registration record: nothing is overwritten.

The ``enterprises`` row (gateway/models.py) mirrors the one active version; this table keeps them all,
with the pending changes that wait for the operator and the ones the operator turned down.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.times import utcnow

from ..models import Base, Id


class VersionState(StrEnum):
    """A version: the one in effect, one waiting for the operator, one turned down, one replaced."""

    ACTIVE = "active"
    PENDING = "pending"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class VersionKind(StrEnum):
    """What a version did; also the kind of its entry in the regulators' changes feed."""

    REGISTERED = "registered"
    CHANGED = "changed"
    SUSPENDED = "suspended"
    REINSTATED = "reinstated"
    CANCELLED = "cancelled"


KINDS = tuple(VersionKind)


class EnterpriseVersion(Base):
    __tablename__ = "enterprise_versions"
    __table_args__ = (
        UniqueConstraint("enterprise_code", "version"),
        Index("ix_enterprise_versions_code_state", "enterprise_code", "state"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    enterprise_code: Mapped[str] = mapped_column(ForeignKey("enterprises.code"))
    version: Mapped[int] = mapped_column(Integer)
    record: Mapped[dict] = mapped_column(JSON)  # the full registration record as of this version
    status: Mapped[str] = mapped_column(String(12))  # lifecycle status as of this version
    kind: Mapped[str] = mapped_column(String(12))  # registered, changed, suspended, reinstated, cancelled
    state: Mapped[str] = mapped_column(String(10))  # active, pending, rejected, superseded
    changed_fields: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(18))  # "operator" or the enterprise's code
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)


class RegistryShare(Base):
    """One version announced to one regulator; its id is the regulator's changes-feed cursor."""

    __tablename__ = "registry_shares"
    __table_args__ = (Index("ix_registry_shares_regulator_id", "regulator", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    regulator: Mapped[str] = mapped_column(String(20))
    enterprise_code: Mapped[str] = mapped_column(ForeignKey("enterprises.code"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(12))  # registered, changed, suspended, reinstated, cancelled
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
