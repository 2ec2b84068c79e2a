"""Every time a regulator received a registration (the access log the enterprise reads)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kit.times import utcnow

from ..models import Base, Id


class RegistryAccess(Base):
    """One registration delivered to one regulator: who, which version, which fields, when, and how."""

    __tablename__ = "registry_access_log"
    __table_args__ = (Index("ix_registry_access_log_code_id", "enterprise_code", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    regulator: Mapped[str] = mapped_column(String(20))
    enterprise_code: Mapped[str] = mapped_column(ForeignKey("enterprises.code"))
    version: Mapped[int] = mapped_column(Integer)
    fields: Mapped[list[str]] = mapped_column(JSON)
    via: Mapped[str] = mapped_column(String(8))  # read, changes
    at: Mapped[datetime] = mapped_column(default=utcnow)
