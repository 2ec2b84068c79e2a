"""Every query of the regulators' registry: what was shared with whom, and who read what."""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..enterprises.models import EnterpriseVersion, RegistryShare, VersionState
from .models import RegistryAccess

SHARED_STATES = (VersionState.ACTIVE, VersionState.SUPERSEDED)  # took effect; pending and rejected ones never leave swx


async def shared_since(session: AsyncSession, regulator: str, after: int, limit: int) -> list[tuple[RegistryShare, EnterpriseVersion]]:
    """The shares to ``regulator`` after the cursor, each with the version it announced, oldest first."""
    query = (
        select(RegistryShare, EnterpriseVersion)
        .join(EnterpriseVersion, and_(
            EnterpriseVersion.enterprise_code == RegistryShare.enterprise_code,
            EnterpriseVersion.version == RegistryShare.version,
        ))
        .where(RegistryShare.regulator == regulator, RegistryShare.id > after, EnterpriseVersion.state.in_(SHARED_STATES))
        .order_by(RegistryShare.id)
        .limit(limit)
    )
    return [(share, row) for share, row in (await session.execute(query)).all()]


async def accesses(session: AsyncSession, code: str, after: int, limit: int) -> list[RegistryAccess]:
    query = (
        select(RegistryAccess)
        .where(RegistryAccess.enterprise_code == code, RegistryAccess.id > after)
        .order_by(RegistryAccess.id)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())
