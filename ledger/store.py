"""The ledger's tables: its own ``MetaData``, independent of the gateway's (prefix ``ledger_``).

``ledger_pending``      events submitted but not yet sequenced. ``Ledger.submit`` inserts here inside
                        the caller's transaction, so an event commits (or rolls back) atomically with
                        the business change it records. The sequencer drains it in ``id`` order.
``ledger_entries``      the log: ``idx`` (0-based, gap-free, assigned by the sequencer), the canonical
                        JSON ``entry`` bytes, their RFC 9162 ``leaf_hash`` (indexed, so an event can be
                        found from the hash ``submit`` returned) and ``created_at`` (sequencing time).
``ledger_nodes``        every complete subtree hash, keyed ``(level, idx)``: node ``(L, i)`` covers leaves
                        ``[i * 2**L, (i + 1) * 2**L)``; level 0 is the tree's own copy of the leaf hashes.
                        A log of ``n`` entries holds ``2n - popcount(n)`` rows. Any inclusion or
                        consistency proof needs at most ~2 log2(n) of them, read in one query.
``ledger_topics``       an index, not part of the log: ``(topic, idx)`` pairs, written by the sequencer
                        from the topics given at submit ("order:EBP/NO", "party:CODE", ...), so that
                        callers find the entries about a thing without scanning the log. Topics are
                        never hashed: whoever reads an entry through them checks the entry itself.
``ledger_checkpoints``  one signed checkpoint per sequenced batch: ``size`` (PK), ``root``, the signed
                        note ``note`` (C2SP format) and ``created_at``. The newest row's size is the
                        tree size; its root is the one the sequencer continues from.

Rows are only ever inserted (pending rows are deleted once sequenced). For Alembic, add
``ledger.store.metadata`` to ``target_metadata`` (a list is accepted) and autogenerate.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Text,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.times import utcnow

# SQLite only aliases the rowid for INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for a log.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class LedgerBase(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {datetime: DateTime(timezone=True)}


class PendingRow(LedgerBase):
    __tablename__ = "ledger_pending"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    topics: Mapped[str | None] = mapped_column(Text)  # newline-separated, copied to ledger_topics
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class EntryRow(LedgerBase):
    __tablename__ = "ledger_entries"

    idx: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    entry: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


class NodeRow(LedgerBase):
    __tablename__ = "ledger_nodes"
    __table_args__ = {"sqlite_with_rowid": False}

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)


class TopicRow(LedgerBase):
    __tablename__ = "ledger_topics"
    __table_args__ = {"sqlite_with_rowid": False}

    topic: Mapped[str] = mapped_column(Text, primary_key=True)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class CheckpointRow(LedgerBase):
    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False, default=utcnow)


pending = PendingRow.__table__
entries = EntryRow.__table__
nodes = NodeRow.__table__
topics = TopicRow.__table__
checkpoints = CheckpointRow.__table__
TABLES = (pending, entries, nodes, topics, checkpoints)


async def create_all(conn: AsyncConnection) -> None:
    """Create the ledger tables that do not exist yet (tests, benches; production uses Alembic)."""
    await conn.run_sync(metadata.create_all)


async def drop_all(conn: AsyncConnection) -> None:
    """Drop the ledger tables -- and only those."""
    await conn.run_sync(metadata.drop_all)
