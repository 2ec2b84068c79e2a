"""Tables of the gateway. Alembic migrations in ``gateway/migrations`` create them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.times import utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for long-lived tables.
Id = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True)}


class Enterprise(Base):
    """The registry's current, effective view of an enterprise: what every check reads.

    Every version of the full record is kept in ``enterprise_versions`` (gateway/enterprises); this row
    mirrors the active version's fields that intake and authentication need, plus the lifecycle status.
    """

    __tablename__ = "enterprises"

    code: Mapped[str] = mapped_column(String(18), primary_key=True)  # the code it registered under
    customs_code: Mapped[str | None] = mapped_column(String(10), unique=True)
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(JSON)
    dxp_id: Mapped[str | None] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(12), default="active")  # active, suspended, cancelled
    credit_rating: Mapped[str | None] = mapped_column(String(20))  # advanced, general, dishonest
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)  # the active version
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """A caller's key, stored as its SHA-256: keys are 256-bit random, so a slow hash adds nothing."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    # exactly one of the two: an enterprise's key or a regulator's (customs, inspection, tax, fx)
    enterprise_code: Mapped[str | None] = mapped_column(ForeignKey("enterprises.code"), index=True)
    regulator: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class Message(Base):
    """An accepted filing: the CEB message as received, and the answer given for it."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    guid: Mapped[str] = mapped_column(String(36), unique=True)
    message_type: Mapped[str] = mapped_column(String(3))
    sender_code: Mapped[str] = mapped_column(String(18), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    enveloped: Mapped[bool] = mapped_column(default=False)
    answer: Mapped[dict] = mapped_column(JSON)
    answer_xml: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentParty(Base):
    """An enterprise named in a document (its platform, seller, payment or logistics firm, agent …)."""

    __tablename__ = "document_parties"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True)
    party_code: Mapped[str] = mapped_column(String(18), primary_key=True, index=True)


class Document(Base):
    """One business document (order, payment, …) by its business key, with its current state."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("kind", "business_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))
    business_key: Mapped[str] = mapped_column(String(200))
    owner_code: Mapped[str] = mapped_column(String(18), index=True)
    parties: Mapped[dict] = mapped_column(JSON)  # role field -> enterprise code named in the document
    status: Mapped[str] = mapped_column(String(10))
    app_status: Mapped[str] = mapped_column(String(3))
    version: Mapped[int] = mapped_column(Integer)
    pre_no: Mapped[str | None] = mapped_column(String(18))
    # The declaration it belongs to ("ebpCode|orderNo") where its head names both; what it points at
    # ({"waybill": "logisticsCode|logisticsNo"}); customs' list number once customs has numbered it.
    order_ref: Mapped[str | None] = mapped_column(String(80), index=True)
    links: Mapped[dict | None] = mapped_column(JSON)
    invt_no: Mapped[str | None] = mapped_column(String(20), index=True)  # a summary (701): its sumNo
    topics: Mapped[str | None] = mapped_column(Text)  # its ledger topics, reused by later events about it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentRef(Base):
    """Something an export document names, as ``kind:key`` ("waybill:CODE|NO", "list:INVTNO",
    "bill:BILLNO"): how the declaration view finds the master bills, arrivals, departures, cancellations,
    returns and summaries of a list (CEB.md §8.2)."""

    __tablename__ = "document_refs"

    ref: Mapped[str] = mapped_column(String(120), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), primary_key=True, index=True)


class SummaryResult(Base):
    """Customs' latest CEB792 for one declaration of a summary (``sumNo``, ``declSeqNo``, CEB.md §8.3)."""

    __tablename__ = "summary_results"
    __table_args__ = (UniqueConstraint("sum_no", "decl_seq_no"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)  # the summary request (701)
    sum_no: Mapped[str] = mapped_column(String(18))
    decl_seq_no: Mapped[str] = mapped_column(String(18))
    dec_tmp_no: Mapped[str | None] = mapped_column(String(18))
    dec_pre_no: Mapped[str | None] = mapped_column(String(18))
    entry_id: Mapped[str | None] = mapped_column(String(18))
    dec_state: Mapped[str | None] = mapped_column(String(3))
    gross_weight: Mapped[str | None] = mapped_column(String(30))
    net_weight: Mapped[str | None] = mapped_column(String(30))
    lines: Mapped[list] = mapped_column(JSON)  # [{invtNo, logisticsNo, gseqno, gnum, gcode}]
    receipt_guid: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DocumentVersion(Base):
    """Every version of a document ever filed: nothing is overwritten."""

    __tablename__ = "document_versions"
    __table_args__ = (UniqueConstraint("document_id", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    version: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    app_type: Mapped[str] = mapped_column(String(1))
    app_status: Mapped[str] = mapped_column(String(3))
    head_guid: Mapped[str] = mapped_column(String(36), index=True)
    xml: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Rejection(Base):
    """A refused filing, kept so that its filer can see why later."""

    __tablename__ = "rejections"
    __table_args__ = (UniqueConstraint("sender_code", "digest"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    guid: Mapped[str | None] = mapped_column(String(36), index=True)
    message_type: Mapped[str | None] = mapped_column(String(3))
    sender_code: Mapped[str] = mapped_column(String(18), index=True)
    digest: Mapped[str] = mapped_column(String(64))
    http_status: Mapped[int] = mapped_column(Integer)
    findings: Mapped[list] = mapped_column(JSON)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Receipt(Base):
    """A CEB receipt addressed to one enterprise; its id is the feed cursor."""

    __tablename__ = "receipts"
    __table_args__ = (Index("ix_receipts_addressee_id", "addressee", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    addressee: Mapped[str] = mapped_column(String(18))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    rejection_id: Mapped[int | None] = mapped_column(ForeignKey("rejections.id"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    regulator: Mapped[str | None] = mapped_column(String(20))  # whose verdict it forwards; None: the window's own
    receipt_type: Mapped[str] = mapped_column(String(3))
    return_status: Mapped[str] = mapped_column(String(10))
    return_info: Mapped[str] = mapped_column(Text)
    xml: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
