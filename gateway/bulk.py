"""Inserting a batch of rows and getting their generated ids back, in row order, in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.store import unnest_insert


async def insert_ids(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (dicts with the same keys) and return their ``id``s in the same order.

    On PostgreSQL the ledger's ordered ``unnest`` insert with ``RETURNING id``: one prepared statement
    whatever the batch size, no per-row parameter processing. The sequence hands out ids in insertion
    order, so sorted ids follow the rows (SQLAlchemy's own bulk insert relies on the same). Elsewhere
    SQLAlchemy's ``insert … returning(sort_by_parameter_order=True)``.
    """
    if not rows:
        return []
    conn = await session.connection()
    dialect = conn.dialect
    if dialect.name != "postgresql" or dialect.driver != "asyncpg":
        return list(await session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows)))
    columns = list(rows[0])
    values = []
    for c in columns:
        column = [r[c] for r in rows]
        if isinstance(table.c[c].type, JSON):
            column = [None if v is None else orjson.dumps(v).decode() for v in column]
        values.append(column)
    result = await conn.exec_driver_sql(unnest_insert(dialect, table, columns, ordered=True) + " RETURNING id", tuple(values))
    return sorted(r[0] for r in result)
