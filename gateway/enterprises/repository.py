"""Every query of the registration record: enterprises and their versions (keys: ``gateway/auth/repository.py``)."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..models import Enterprise
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
