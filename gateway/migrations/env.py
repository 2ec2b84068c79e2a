"""Alembic environment: runs migrations on the async engine named by the swx settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import gateway.enterprises.models
import gateway.registry.models
import gateway.routing.models  # noqa: F401
import ledger.store
from gateway.config import Settings
from gateway.db import make_engine
from gateway.models import Base

config = context.config
# The ledger keeps its tables in a MetaData of its own: it knows nothing of the gateway.
target_metadata = [Base.metadata, ledger.store.metadata]


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    settings: Settings = config.attributes.get("settings") or Settings()
    engine = make_engine(settings)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=Settings().database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
