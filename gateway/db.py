"""Database engine and sessions (SQLAlchemy 2 async: aiosqlite by default, asyncpg for PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .config import Settings


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode()


# JSON columns (answers, parties) through orjson: the standard library's encoder showed in profiles.
JSON_CODEC = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def make_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 30}, **JSON_CODEC)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL lets readers run beside the writer; FULL sync so an acknowledged filing survives a crash;
            # foreign keys are off by default in SQLite.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # No pre-ping by default: it costs a round trip per checkout, and a connection that died with a
    # database restart fails one request (which answers 500 and stores nothing) and is then replaced.
    return create_async_engine(
        settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size,
        pool_pre_ping=settings.db_pre_ping, **JSON_CODEC,
        # Batched writes and IN lists make a statement shape per batch size: keep them all prepared.
        connect_args={"prepared_statement_cache_size": 1000},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_scope(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with factory() as session:
        yield session
