"""The one unit of work: a write commits once with its ledger trail and then wakes exactly who it must."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from gateway.audit import events as audit
from gateway.config import Settings
from gateway.db import Database, Effect, touch
from gateway.enterprises.sharing import load_policy
from gateway.migrate import upgrade
from gateway.models import Rejection
from gateway.routing.models import Delivery
from gateway.routing.outbox import route_registration
from gateway.trail import note
from ledger.store import pending


@pytest.fixture()
async def db(tmp_path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'uow.db'}")
    await asyncio.to_thread(upgrade, settings, "head")
    database = Database.open(settings)
    yield database
    await database.dispose()


def _wakes(database: Database) -> dict[Effect, int]:
    calls = dict.fromkeys(Effect, 0)
    for effect in Effect:
        database.on_commit(effect, lambda e=effect: calls.__setitem__(e, calls[e] + 1))
    return calls


def _rejection(n: int) -> Rejection:
    return Rejection(guid=None, message_type=None, sender_code="operator", digest=f"{n:064d}", http_status=400,
                     findings=[], raw=b"<x/>")


async def test_a_write_wakes_only_the_workers_its_change_needs(db):
    calls = _wakes(db)
    async with db.write() as session:
        touch(session, Effect.OUTBOX)
    assert calls == {Effect.OUTBOX: 1, Effect.LEDGER: 0, Effect.CREDENTIALS: 0}
    async with db.write() as session:
        session.add(_rejection(1))
    assert calls == {Effect.OUTBOX: 1, Effect.LEDGER: 0, Effect.CREDENTIALS: 0}


async def test_noted_events_are_queued_in_the_same_transaction_and_wake_the_sequencer(db):
    calls = _wakes(db)
    async with db.write() as session:
        session.add(_rejection(2))
        note(session, *audit.filing_rejected(sender=None, guid=None, message_type=None, digest="0" * 64,
                                             http_status=400, codes=["0001"]))
    assert calls[Effect.LEDGER] == 1
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(pending)) == 1


async def test_a_failed_write_stores_nothing_and_wakes_nobody(db):
    calls = _wakes(db)
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            session.add(_rejection(3))
            note(session, *audit.filing_rejected(sender=None, guid=None, message_type=None, digest="1" * 64,
                                                 http_status=400, codes=["0001"]))
            touch(session, Effect.OUTBOX)
            touch(session, Effect.CREDENTIALS)
            raise RuntimeError("a failure inside the unit of work")
    assert calls == dict.fromkeys(Effect, 0)
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Rejection)) == 0
        assert await session.scalar(select(func.count()).select_from(pending)) == 0


async def test_a_shared_registration_wakes_the_dispatcher_not_only_the_sequencer(db):
    """Registry writes queue deliveries; the dispatcher is woken by their commit rather than its next poll."""
    calls = _wakes(db)
    policy = load_policy()
    async with db.write() as session:
        route_registration(session, policy, "3301960AB1", 1, "active", {"name": "x", "roles": ["ebp"]})
    assert calls[Effect.OUTBOX] == 1
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Delivery)) == len(policy.regulators)
