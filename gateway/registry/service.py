"""What regulators read: each version in its policy view, the changes feed, and the access log."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kit.times import iso

from .. import trail
from ..audit import events as audit
from ..auth import Principal
from ..enterprises import repository as registrations
from ..enterprises.errors import EnterpriseNotFound, VersionNotFound
from ..enterprises.models import EnterpriseVersion
from ..enterprises.service import current_row, visible
from ..enterprises.sharing import SharingPolicy
from . import repository
from .errors import AccessLogPrivate, NotShared
from .models import RegistryAccess
from .repository import SHARED_STATES


def fields_for(policy: SharingPolicy, regulator: str) -> tuple[str, ...]:
    fields = policy.fields_for(regulator)
    if fields is None:
        raise NotShared(f"the sharing policy shares no registration with {regulator}")
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
    ent = await registrations.resolve(session, code)
    if ent is None:
        raise EnterpriseNotFound(code)
    if version is None or version == ent.version:
        row = await current_row(session, ent)
    else:
        row = await registrations.version_row(session, ent.code, version, states=SHARED_STATES)
        if row is None:
            raise VersionNotFound(f"enterprise {code} has no shared version {version}")
    view = _view(policy, regulator, ent.code, row)
    _log(session, regulator, ent.code, view, "read")
    return view


async def changes(session: AsyncSession, policy: SharingPolicy, regulator: str, after: int, limit: int) -> dict:
    """New registrations and changes shared with ``regulator`` since the cursor ``after``, each one logged."""
    fields_for(policy, regulator)
    items = []
    last = after
    for share, row in await repository.shared_since(session, regulator, after, limit):
        view = _view(policy, regulator, share.enterprise_code, row)
        _log(session, regulator, share.enterprise_code, view, "changes")
        items.append({"id": share.id, "kind": share.kind, "code": share.enterprise_code, "version": share.version,
                      "sharedAt": iso(share.created_at), "record": view})
        last = share.id
    return {"changes": items, "next": last}


async def access_log(session: AsyncSession, caller: Principal, code: str, after: int, limit: int) -> dict:
    """Every regulator's receipt of this enterprise's registration; the enterprise itself and the operator read it."""
    if caller.is_regulator:
        raise AccessLogPrivate("the access log is the enterprise's and the operator's")
    ent = await visible(session, caller, code)  # the enterprise itself or the operator, as for the record
    entries = [
        {"id": a.id, "regulator": a.regulator, "version": a.version, "fields": a.fields, "via": a.via, "at": iso(a.at)}
        for a in await repository.accesses(session, ent.code, after, limit)
    ]
    return {"code": ent.code, "entries": entries, "next": entries[-1]["id"] if entries else after}
