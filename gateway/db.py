"""The database and the one unit of work every write goes through.

``Database.write()`` is the only way the window changes its tables: it takes the writer lock (SQLite
has one writer at a time; the lock queues writers, which beats SQLite's busy-wait by far), opens one
session and one transaction, optionally takes a PostgreSQL advisory lock, and at the end flushes the
ledger trail into the same transaction, commits once, and then wakes exactly the workers the change
needs — the ledger sequencer when events were queued, the dispatcher when deliveries were, the key
cache when credentials changed. Code inside marks what it did with :func:`touch`; it never commits
and never wakes anything itself.

Endpoints take it as a dependency (``WriteSession`` / ``ReadSession``), background workers call
``db.write()``: one path, so the copies cannot drift.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from enum import IntEnum, StrEnum
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from . import trail
from .config import Settings

_EFFECTS = "swx.effects"
_WRITE = "swx_write"  # execution option of the write sessions' connections (SQLite: BEGIN IMMEDIATE)


class Effect(StrEnum):
    """What a committed write may need others to notice."""

    LEDGER = "ledger"  # events queued for the ledger: the sequencer
    OUTBOX = "outbox"  # deliveries queued or rescheduled: the dispatcher
    CREDENTIALS = "credentials"  # keys, roles or a status changed: cached keys are stale


class Lock(IntEnum):
    """PostgreSQL transaction-scoped advisory locks (on SQLite the writer lock already serializes)."""

    REGISTRY = 0x53575852  # "SWXR": registry writes, so versions never collide and feed cursors commit in order


def touch(session: AsyncSession, effect: Effect) -> None:
    """Mark that this transaction did something ``effect``'s workers must notice once it commits."""
    session.info.setdefault(_EFFECTS, set()).add(effect)


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
            # The driver would begin a transaction only before its first INSERT/UPDATE/DELETE, so a
            # transaction's SELECTs read outside it: two processes could both read a delivery as due and
            # both claim it. swx begins every transaction itself (below).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn):
            # A write transaction takes SQLite's write lock at its first statement (BEGIN IMMEDIATE), so
            # what it reads is what it writes over, whichever process it is in; another process's writer
            # waits on the busy timeout. Reads begin deferred and never block a writer (WAL).
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

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


class Database:
    """The engine, its sessions, the writer lock and who to wake after a commit; and, when configured,
    a replica engine the read views use (``view()``), so that polling them never loads the primary."""

    def __init__(self, engine: AsyncEngine, replica: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.replica = replica
        self.sessions = make_sessionmaker(engine)
        self.view_sessions = make_sessionmaker(replica) if replica is not None else self.sessions
        self.write_sessions = make_sessionmaker(engine.execution_options(**{_WRITE: True}))
        self.postgres = engine.dialect.name == "postgresql"
        self.write_lock: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        self._wakers: dict[Effect, list[Callable[[], None]]] = {e: [] for e in Effect}

    @classmethod
    def open(cls, settings: Settings) -> Database:
        replica = None
        if settings.read_database_url:
            replica = make_engine(settings.model_copy(update={"database_url": settings.read_database_url}))
        return cls(make_engine(settings), replica)

    def on_commit(self, effect: Effect, wake: Callable[[], None]) -> None:
        """Call ``wake`` after every commit that marked ``effect``."""
        self._wakers[effect].append(wake)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def view(self) -> AsyncIterator[AsyncSession]:
        """A read of a view that may lag the primary by the replica's delay (the primary without one)."""
        async with self.view_sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self, *, lock: Lock | None = None) -> AsyncIterator[AsyncSession]:
        """One transaction: committed at the end (with its ledger trail) or rolled back on an error."""
        async with self.write_lock, self.write_sessions() as session, session.begin():
            if lock is not None and self.postgres:
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(lock)})
            yield session
            if await trail.flush(session):
                touch(session, Effect.LEDGER)
            effects: set[Effect] = session.info.pop(_EFFECTS, set())
        for effect in sorted(effects):
            for wake in self._wakers[effect]:
                wake()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replica is not None:
            await self.replica.dispose()


def database(request: Request) -> Database:
    return request.app.state.db


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with database(request).read() as session:
        yield session


async def _view_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with database(request).view() as session:
        yield session


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with database(request).write() as session:
        yield session


async def _registry_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with database(request).write(lock=Lock.REGISTRY) as session:
        yield session


# Endpoint parameters. "function" scope: the transaction commits before the answer is sent.
Db = Annotated[Database, Depends(database)]
ReadSession = Annotated[AsyncSession, Depends(_read_session, scope="function")]
# The read views (declarations, deliveries, the ledger, the trace, statistics): SWX_READ_DATABASE_URL's replica.
ViewSession = Annotated[AsyncSession, Depends(_view_session, scope="function")]
WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]
RegistryWriteSession = Annotated[AsyncSession, Depends(_registry_session, scope="function")]
