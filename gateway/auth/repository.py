"""Every query of API keys: who a key belongs to, an owner's keys, revocation."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.times import utcnow

from ..models import ApiKey, Enterprise


def _owner(enterprise_code: str | None, regulator: str | None) -> ColumnElement[bool]:
    return ApiKey.enterprise_code == enterprise_code if enterprise_code else ApiKey.regulator == regulator


async def key_owner(session: AsyncSession, key_hash: str) -> tuple[ApiKey, Enterprise | None] | None:
    """The live key with this hash and the enterprise it belongs to (None for a regulator's key)."""
    found = (await session.execute(
        select(ApiKey, Enterprise)
        .outerjoin(Enterprise, ApiKey.enterprise_code == Enterprise.code)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )).one_or_none()
    return None if found is None else (found[0], found[1])


async def keys_of(session: AsyncSession, *, enterprise_code: str | None = None, regulator: str | None = None) -> list[ApiKey]:
    return list((await session.execute(select(ApiKey).where(_owner(enterprise_code, regulator)).order_by(ApiKey.id))).scalars())


async def revoke_keys(session: AsyncSession, *, enterprise_code: str | None = None, regulator: str | None = None,
                      key_id: int | None = None) -> int:
    """Revoke the owner's live keys (only ``key_id`` when given); how many keys of the owner matched."""
    query = select(ApiKey).where(_owner(enterprise_code, regulator))
    if key_id is not None:
        query = query.where(ApiKey.id == key_id)
    else:
        query = query.where(ApiKey.revoked_at.is_(None))
    rows = list((await session.execute(query)).scalars())
    for row in rows:
        if row.revoked_at is None:
            row.revoked_at = utcnow()
    return len(rows)
