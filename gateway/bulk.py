"""Inserting a batch of rows and getting their generated ids back, in row order, in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from ledger.store import pg_array


def _pg_type(column: Any) -> str:
    if isinstance(column.type, JSON):
        return "json[]"
    if isinstance(column.type, Boolean):
        return "boolean[]"
    return pg_array(column)


async def insert_ids(session: AsyncSession, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (dicts with the same keys) and return their ``id``s in the same order.

    On PostgreSQL one ``INSERT … SELECT FROM unnest(arrays) ORDER BY ordinality RETURNING id``: one
    prepared statement whatever the batch size, no per-row parameter processing. The sequence hands
    out ids in insertion order, so sorted ids follow the rows (SQLAlchemy's own bulk insert relies on
    the same). Elsewhere SQLAlchemy's ``insert … returning(sort_by_parameter_order=True)``.
    """
    if not rows:
        return []
    conn = await session.connection()
    dialect = conn.dialect
    if dialect.name != "postgresql" or dialect.driver != "asyncpg":
        return list(await session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows)))
    columns = list(rows[0])
    quote = dialect.identifier_preparer.quote
    arrays, values = [], []
    for i, c in enumerate(columns):
        kind = _pg_type(table.c[c])
        arrays.append(f"${i + 1}::{kind}")
        column = [r[c] for r in rows]
        if kind == "json[]":
            column = [None if v is None else orjson.dumps(v).decode() for v in column]
        values.append(column)
    names = ", ".join(f"c{i}" for i in range(len(columns)))
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({', '.join(quote(c) for c in columns)}) "
        f"SELECT {names} FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS u({names}, n) ORDER BY n RETURNING id"
    )
    result = await conn.exec_driver_sql(sql, tuple(values))
    return sorted(r[0] for r in result)
