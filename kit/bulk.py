"""Set-based inserts: many rows in one statement, generated ids back in row order.

On PostgreSQL (asyncpg) an ``INSERT … SELECT FROM unnest(arrays)``: one prepared statement whatever
the number of rows, no per-row parameter processing. On SQLite the driver's ``executemany``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    insert,
)
from sqlalchemy.ext.asyncio import AsyncSession

_PG_ARRAYS = (
    (SmallInteger, "smallint[]"), (Integer, "bigint[]"), (LargeBinary, "bytea[]"), (DateTime, "timestamptz[]"),
    (String, "text[]"),  # Text is a String
    (Boolean, "boolean[]"), (JSON, "json[]"),  # JSON travels as its text
)


def pg_array(column: Any) -> str:
    """The PostgreSQL array type that carries a column's values in ``unnest``."""
    for kind, name in _PG_ARRAYS:  # BigInteger is an Integer; SmallInteger is tested first
        if isinstance(column.type, kind):
            return name
    raise TypeError(f"no array type for {column}")


def unnest_insert(dialect: Any, table: Table, columns: Sequence[str], ordered: bool = False) -> str:
    """``INSERT INTO table (columns) SELECT … FROM unnest($1::type[], …)`` for asyncpg: one statement
    (and one prepared plan) whatever the number of rows; ``ordered`` keeps the rows' order."""
    quote = dialect.identifier_preparer.quote
    head = f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({', '.join(quote(c) for c in columns)}) "
    arrays = ", ".join(f"${i + 1}::{pg_array(table.c[c])}" for i, c in enumerate(columns))
    if not ordered:
        return head + f"SELECT * FROM unnest({arrays})"
    names = ", ".join(f"c{i}" for i in range(len(columns)))
    return head + f"SELECT {names} FROM unnest({arrays}) WITH ORDINALITY AS u({names}, n) ORDER BY n"


async def bulk_insert(
    session: AsyncSession, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]], ordered: bool = False
) -> None:
    """Insert many rows fast: one ``INSERT ... SELECT FROM unnest(arrays)`` on PostgreSQL (asyncpg),
    the driver's ``executemany`` on SQLite, SQLAlchemy's executemany elsewhere. Values are plain
    Python ints, bytes, str and aware datetimes, in ``columns`` order. ``ordered``: generated keys
    follow the row order (PostgreSQL needs an explicit sort for that)."""
    if not rows:
        return
    conn = await session.connection()
    dialect = conn.dialect
    name = dialect.identifier_preparer.format_table(table)
    cols = ", ".join(dialect.identifier_preparer.quote(c) for c in columns)
    if dialect.name == "postgresql" and dialect.driver == "asyncpg":
        await conn.exec_driver_sql(unnest_insert(dialect, table, columns, ordered), tuple(list(v) for v in zip(*rows)))
    elif dialect.name == "sqlite" and dialect.paramstyle == "qmark":
        procs = [table.c[c].type._cached_bind_processor(dialect) if isinstance(table.c[c].type, DateTime) else None for c in columns]
        if any(procs):
            rows = [tuple(p(v) if p else v for p, v in zip(procs, r)) for r in rows]
        await conn.exec_driver_sql(f"INSERT INTO {name} ({cols}) VALUES ({', '.join('?' * len(columns))})", list(rows))
    else:
        await conn.execute(insert(table), [dict(zip(columns, r)) for r in rows])


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


async def upsert(session: AsyncSession, table: Table, key: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys), or where a row with the same ``key`` columns exists
    (a unique constraint), set its other columns to the new values: one statement for the batch. With
    every column in ``key``, a row that exists is left as it is."""
    if not rows:
        return
    conn = await session.connection()
    dialect = conn.dialect
    columns = list(rows[0])
    changed = [c for c in columns if c not in key]
    if dialect.name == "postgresql" and dialect.driver == "asyncpg":
        quote = dialect.identifier_preparer.quote
        values = []
        for c in columns:
            column = [r[c] for r in rows]
            if isinstance(table.c[c].type, JSON):
                column = [None if v is None else orjson.dumps(v).decode() for v in column]
            values.append(column)
        conflict = unnest_insert(dialect, table, columns) + f" ON CONFLICT ({', '.join(quote(c) for c in key)}) "
        sql = conflict + ("DO UPDATE SET " + ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in changed)
                          if changed else "DO NOTHING")
        await conn.exec_driver_sql(sql, tuple(values))
        return
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - swx runs on PostgreSQL and SQLite
        raise NotImplementedError(f"upsert on {dialect.name}")
    statement = dialect_insert(table)
    statement = (statement.on_conflict_do_update(index_elements=list(key), set_={c: statement.excluded[c] for c in changed})
                 if changed else statement.on_conflict_do_nothing(index_elements=list(key)))
    await session.execute(statement, list(rows))
