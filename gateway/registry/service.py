"""What regulators read: each version in its policy view, the changes feed, and the access log."""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.times import iso

from ..audit import events as audit
from ..audit import trail
from ..enterprises.models import ACTIVE, SUPERSEDED, EnterpriseVersion
from ..enterprises.service import current_row, resolve
from ..models import Enterprise
from ..problems import Problem
from .models import RegistryAccess, RegistryShare
from .policy import SharingPolicy

SHARED_STATES = (ACTIVE, SUPERSEDED)  # versions that took effect; pending and rejected ones never leave swx


def fields_for(policy: SharingPolicy, regulator: str) -> tuple[str, ...]:
    fields = policy.fields_for(regulator)
    if fields is None:
        raise Problem(403, "Forbidden", f"the sharing policy shares no registration with {regulator}")
    return fields


def _view(policy: SharingPolicy, regulator: str, ent_code: str, row: EnterpriseVersion) -> dict:
    view = policy.view(regulator, row.record, code=ent_code, version=row.version, status=row.status)
    assert view is not None
    return view


def _log(session: AsyncSession, regulator: str, code: str, view: dict, via: str) -> None:
    session.add(RegistryAccess(regulator=regulator, enterprise_code=code, version=view["version"], fields=list(view), via=via))
    trail.note(session, audit.registration_read(code, view["version"], regulator=regulator, view=view, via=via))


async def read(session: AsyncSession, policy: SharingPolicy, regulator: str, code: str, version: int | None) -> dict:
    """One version of a registration (the one in effect unless ``version``) in ``regulator``'s view, logged."""
    fields_for(policy, regulator)
    ent = await resolve(session, code)
    if ent is None:
        raise Problem(404, "Not Found", f"no enterprise {code} is registered")
    if version is None or version == ent.version:
        row = await current_row(session, ent)
    else:
        query = select(EnterpriseVersion).where(
            EnterpriseVersion.enterprise_code == ent.code, EnterpriseVersion.version == version,
            EnterpriseVersion.state.in_(SHARED_STATES),
        )
        row = (await session.execute(query)).scalar_one_or_none()
        if row is None:
            raise Problem(404, "Not Found", f"enterprise {code} has no shared version {version}")
    view = _view(policy, regulator, ent.code, row)
    _log(session, regulator, ent.code, view, "read")
    return view


async def changes(session: AsyncSession, policy: SharingPolicy, regulator: str, after: int, limit: int) -> dict:
    """New registrations and changes shared with ``regulator`` since the cursor ``after``, each one logged."""
    fields_for(policy, regulator)
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
    items = []
    last = after
    for share, row in (await session.execute(query)).all():
        view = _view(policy, regulator, share.enterprise_code, row)
        _log(session, regulator, share.enterprise_code, view, "changes")
        items.append({"id": share.id, "kind": share.kind, "code": share.enterprise_code, "version": share.version,
                      "sharedAt": iso(share.created_at), "record": view})
        last = share.id
    return {"changes": items, "next": last}


async def access_log(session: AsyncSession, ent: Enterprise, after: int, limit: int) -> dict:
    query = (
        select(RegistryAccess)
        .where(RegistryAccess.enterprise_code == ent.code, RegistryAccess.id > after)
        .order_by(RegistryAccess.id)
        .limit(limit)
    )
    entries = [
        {"id": a.id, "regulator": a.regulator, "version": a.version, "fields": a.fields, "via": a.via, "at": iso(a.at)}
        for a in (await session.execute(query)).scalars()
    ]
    return {"code": ent.code, "entries": entries, "next": entries[-1]["id"] if entries else after}
