"""Every query of the registration record: enterprises, their versions and the API keys."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.times import utcnow

from ..models import ApiKey, Enterprise
from .models import EnterpriseVersion, VersionState


async def resolve(session: AsyncSession, code: str) -> Enterprise | None:
    """The enterprise known by ``code``: the code it registered under, its customs code or its USCC."""
    query = select(Enterprise).where(or_(Enterprise.code == code, Enterprise.customs_code == code, Enterprise.uscc == code))
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def code_taken(session: AsyncSession, field: str, value: str, own_code: str | None = None) -> bool:
    """Whether ``value`` (a customs code or USCC, as ``field``) names an enterprise other than ``own_code``."""
    column = Enterprise.customs_code if field == "customsCode" else Enterprise.uscc
    query = select(Enterprise.code).where(or_(column == value, Enterprise.code == value))
    if own_code:
        query = query.where(Enterprise.code != own_code)
    return (await session.execute(query.limit(1))).first() is not None


async def version_row(session: AsyncSession, code: str, version: int, *,
                      states: tuple[VersionState, ...] | None = None) -> EnterpriseVersion | None:
    query = select(EnterpriseVersion).where(EnterpriseVersion.enterprise_code == code, EnterpriseVersion.version == version)
    if states is not None:
        query = query.where(EnterpriseVersion.state.in_(states))
    return (await session.execute(query)).scalar_one_or_none()


async def pending_row(session: AsyncSession, code: str) -> EnterpriseVersion | None:
    query = select(EnterpriseVersion).where(
        EnterpriseVersion.enterprise_code == code, EnterpriseVersion.state == VersionState.PENDING
    )
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def next_version(session: AsyncSession, code: str) -> int:
    query = select(func.max(EnterpriseVersion.version)).where(EnterpriseVersion.enterprise_code == code)
    return ((await session.execute(query)).scalar() or 0) + 1


async def versions_of(session: AsyncSession, code: str) -> list[EnterpriseVersion]:
    query = select(EnterpriseVersion).where(EnterpriseVersion.enterprise_code == code).order_by(EnterpriseVersion.version)
    return list((await session.execute(query)).scalars())


# ---- keys ----------------------------------------------------------------------------------------------


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
