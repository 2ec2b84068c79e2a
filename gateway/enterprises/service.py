"""The registration record's versions and lifecycle, and the enterprises' keys.

Every change is a new version in ``enterprise_versions``; nothing is overwritten. The ``enterprises``
row mirrors the version in effect, and each version that takes effect is announced to every
regulator the sharing policy names (``registry_shares``, the regulators' changes feed).

Writes to the registry are serialized: on PostgreSQL by a transaction-scoped advisory lock (so that
version numbers never collide and feed cursors are committed in order), on SQLite by the app's
writer lock (SQLite has one writer at a time anyway). Every version, decision and share is noted
for the audit ledger in the same transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from kit.times import iso, utcnow

from ..audit import events as audit
from ..audit import trail
from ..auth import Principal, hash_key, new_api_key
from ..models import ApiKey, Enterprise
from ..problems import Problem
from ..registry.models import RegistryShare
from ..registry.policy import SharingPolicy
from ..routing.outbox import route_registration
from .certificates import describe
from .models import ACTIVE, PENDING, REJECTED, SUPERSEDED, EnterpriseVersion
from .record import FIELDS, NEEDS_APPROVAL
from .schemas import EnterpriseIn, RecordChange

REGISTRY_LOCK_KEY = 0x53575852  # "SWXR": PostgreSQL advisory lock of registry writes
# Lifecycle actions: the statuses each may start from, and the status it leads to.
LIFECYCLE = {
    "suspend": ({"active"}, "suspended", "suspended"),
    "reinstate": ({"suspended"}, "active", "reinstated"),
    "cancel": ({"active", "suspended"}, "cancelled", "cancelled"),
}


@contextlib.asynccontextmanager
async def writing(app: Any, *, serialize: bool = True) -> AsyncIterator[AsyncSession]:
    """One registry write transaction, serialized with every other registry write.

    ``serialize=False`` (PostgreSQL only) is for writes that only append to the access log.
    """
    state = app.state
    postgres = state.engine.dialect.name == "postgresql"
    async with state.write_lock, state.sessions() as session, session.begin():
        if postgres and serialize:
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REGISTRY_LOCK_KEY})
        yield session
        queued = await trail.flush(session)
    if getattr(state, "key_cache", None) is not None:
        state.key_cache.clear()  # keys, roles or a status may have changed
    if queued:
        state.audit.committed()


def invalid(*errors: tuple[str, str]) -> Problem:
    """A 422 of the same shape as a malformed request body's, for rules that span fields."""
    return Problem(
        422, "Invalid request", "; ".join(f"{f}: {m}" for f, m in errors),
        errors=[{"field": f, "message": m, "type": "value_error"} for f, m in errors],
    )


def not_found(code: str) -> Problem:
    return Problem(404, "Not Found", f"no enterprise {code} is registered")


# ---- the record -----------------------------------------------------------------------------------------


def json_value(field: str, value: Any) -> Any:
    """A validated field value as the record stores it."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    if field == "contact":
        return value.model_dump()
    if field == "certificates":
        return [describe(pem) for pem in value]
    return value


def record_from(payload: EnterpriseIn) -> dict:
    record = {f: json_value(f, getattr(payload, f)) for f in FIELDS}
    if payload.code is not None:
        target = "customsCode" if len(payload.code) == 10 else "uscc"
        if record[target] not in (None, payload.code):
            raise invalid(("code", f"is {payload.code} but {target} is {record[target]}: they must be the same"))
        record[target] = payload.code
    if not record["customsCode"] and not record["uscc"]:
        raise invalid(("code", "a registration needs a customsCode (10 characters) or a uscc (18 characters), or both"))
    check_record(record)
    return record


def check_record(record: dict, registered_code: str | None = None) -> None:
    """Rules that span fields: one code at least, the registered code kept, a validity that is a period."""
    errors: list[tuple[str, str]] = []
    if not record.get("customsCode") and not record.get("uscc"):
        errors.append(("customsCode", "a registration keeps a customsCode or a uscc: both cannot be cleared"))
    if registered_code:
        field = "customsCode" if len(registered_code) == 10 else "uscc"
        if record.get(field) != registered_code:
            errors.append((field, f"is the code this enterprise is registered under ({registered_code}) and cannot change; register anew"))
    if record.get("validFrom") and record.get("validTo") and record["validTo"] < record["validFrom"]:
        errors.append(("validTo", f"must not be before validFrom ({record['validFrom']})"))
    if errors:
        raise invalid(*errors)


async def check_unique(session: AsyncSession, record: dict, own_code: str | None = None) -> None:
    for field, column in (("customsCode", Enterprise.customs_code), ("uscc", Enterprise.uscc)):
        value = record.get(field)
        if not value:
            continue
        query = select(Enterprise.code).where(or_(column == value, Enterprise.code == value))
        if own_code:
            query = query.where(Enterprise.code != own_code)
        if (await session.execute(query.limit(1))).first() is not None:
            raise Problem(409, "Conflict", f"{field} {value} is already registered to another enterprise", field=field)


def mirror(ent: Enterprise, record: dict, version: int, status: str) -> None:
    """Bring the effective row in line with the version that now takes effect."""
    ent.customs_code = record.get("customsCode")
    ent.uscc = record.get("uscc")
    ent.name = record["name"]
    ent.roles = list(record["roles"])
    ent.dxp_id = record.get("dxpId")
    ent.credit_rating = record.get("creditRating")
    ent.valid_from = date.fromisoformat(record["validFrom"]) if record.get("validFrom") else None
    ent.valid_to = date.fromisoformat(record["validTo"]) if record.get("validTo") else None
    ent.version = version
    ent.status = status
    ent.updated_at = utcnow()


# ---- reading ------------------------------------------------------------------------------------------


async def resolve(session: AsyncSession, code: str) -> Enterprise | None:
    """The enterprise known by ``code``: the code it registered under, its customs code or its USCC."""
    query = select(Enterprise).where(or_(Enterprise.code == code, Enterprise.customs_code == code, Enterprise.uscc == code))
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def version_row(session: AsyncSession, code: str, version: int) -> EnterpriseVersion | None:
    query = select(EnterpriseVersion).where(EnterpriseVersion.enterprise_code == code, EnterpriseVersion.version == version)
    return (await session.execute(query)).scalar_one_or_none()


async def pending_row(session: AsyncSession, code: str) -> EnterpriseVersion | None:
    query = select(EnterpriseVersion).where(EnterpriseVersion.enterprise_code == code, EnterpriseVersion.state == PENDING)
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def current_row(session: AsyncSession, ent: Enterprise, *, persist: bool = False) -> EnterpriseVersion:
    row = await version_row(session, ent.code, ent.version)
    if row is None:  # registered before versions were kept: its effective row is its first version
        row = EnterpriseVersion(
            enterprise_code=ent.code, version=ent.version, status=ent.status, kind="registered", state=ACTIVE,
            record=legacy_record(ent), changed_fields=[], created_by="operator",
        )
        if persist:
            session.add(row)
            await session.flush()
    return row


def legacy_record(ent: Enterprise) -> dict:
    record: dict[str, Any] = dict.fromkeys(FIELDS)
    record.update(
        customsCode=ent.customs_code or (ent.code if len(ent.code) == 10 else None),
        uscc=ent.uscc or (ent.code if len(ent.code) == 18 else None),
        name=ent.name, roles=list(ent.roles), dxpId=ent.dxp_id, creditRating=ent.credit_rating or "general",
        validFrom=ent.valid_from.isoformat() if ent.valid_from else None,
        validTo=ent.valid_to.isoformat() if ent.valid_to else None, businessCategories=[], certificates=[],
    )
    return record


async def next_version(session: AsyncSession, code: str) -> int:
    query = select(func.max(EnterpriseVersion.version)).where(EnterpriseVersion.enterprise_code == code)
    return ((await session.execute(query)).scalar() or 0) + 1


def version_out(v: EnterpriseVersion) -> dict:
    return {
        "version": v.version, "state": v.state, "kind": v.kind, "status": v.status, "changedFields": v.changed_fields,
        "createdBy": v.created_by, "createdAt": iso(v.created_at), "decidedAt": iso(v.decided_at), "note": v.decision_note,
        "record": v.record,
    }


async def enterprise_out(session: AsyncSession, ent: Enterprise) -> dict:
    current = await current_row(session, ent)
    pending = await pending_row(session, ent.code)
    return {
        "code": ent.code, "status": ent.status, "version": ent.version, "record": current.record,
        "createdAt": iso(ent.created_at), "updatedAt": iso(ent.updated_at),
        "pending": None if pending is None else {
            "version": pending.version, "changedFields": pending.changed_fields, "record": pending.record,
            "createdBy": pending.created_by, "createdAt": iso(pending.created_at),
        },
    }


async def versions(session: AsyncSession, ent: Enterprise) -> list[dict]:
    query = select(EnterpriseVersion).where(EnterpriseVersion.enterprise_code == ent.code).order_by(EnterpriseVersion.version)
    rows = list((await session.execute(query)).scalars())
    if not any(v.version == ent.version for v in rows):
        rows.insert(0, await current_row(session, ent))
    return [version_out(v) for v in rows]


# ---- writing ------------------------------------------------------------------------------------------


def share(session: AsyncSession, policy: SharingPolicy, code: str, version: int, kind: str, record: dict, status: str) -> None:
    """Announce a version that took effect to every regulator the policy names: in its changes feed,
    and as a delivery in the outbox (pushed, or pulled from its inbox)."""
    for regulator in policy.regulators:
        session.add(RegistryShare(regulator=regulator, enterprise_code=code, version=version, kind=kind))
    route_registration(session, policy, code, version, status, record)
    if policy.regulators:
        trail.note(session, audit.registration_shared(code, version, record=record, kind=kind, regulators=policy.regulators))


def add_version(session: AsyncSession, row: EnterpriseVersion) -> None:
    session.add(row)
    trail.note(session, audit.registration_created(
        row.enterprise_code, row.version, record=row.record, kind=row.kind, state=row.state, status=row.status,
        changed=row.changed_fields, by=row.created_by,
    ))


def take_effect(
    session: AsyncSession, policy: SharingPolicy, ent: Enterprise, current: EnterpriseVersion, row: EnterpriseVersion
) -> None:
    """``row`` replaces ``current`` as the version in effect."""
    current.state = SUPERSEDED
    row.state = ACTIVE
    mirror(ent, row.record, row.version, row.status)
    share(session, policy, ent.code, row.version, row.kind, row.record, row.status)


async def register(session: AsyncSession, policy: SharingPolicy, payload: EnterpriseIn) -> tuple[Enterprise, str]:
    record = record_from(payload)
    await check_unique(session, record)
    code = record["customsCode"] or record["uscc"]
    ent = Enterprise(code=code, name=record["name"], roles=record["roles"], status="active", created_at=utcnow())
    mirror(ent, record, 1, "active")
    session.add(ent)
    await session.flush()
    key = new_api_key()
    session.add(ApiKey(key_hash=hash_key(key), prefix=key[:12], enterprise_code=code))
    add_version(session, EnterpriseVersion(
        enterprise_code=code, version=1, record=record, status="active", kind="registered", state=ACTIVE,
        changed_fields=[f for f in FIELDS if record.get(f) not in (None, [])], created_by="operator",
    ))
    share(session, policy, code, 1, "registered", record, "active")
    await session.flush()
    return ent, key


def author(caller: Principal) -> str:
    return "operator" if caller.is_operator else str(caller.code)


async def change(
    session: AsyncSession, policy: SharingPolicy, ent: Enterprise, payload: RecordChange, caller: Principal
) -> bool:
    """File a change; True when part of it waits for the operator's approval.

    The operator's changes take effect at once. An enterprise's changes to its identity (customs code,
    USCC, name) or roles become a pending version; its other changes take effect at once.
    """
    if ent.status == "cancelled":
        raise Problem(409, "Conflict", f"enterprise {ent.code} is cancelled; its registration can no longer change")
    current = await current_row(session, ent, persist=True)
    wanted = {f: json_value(f, getattr(payload, f)) for f in FIELDS if f in payload.model_fields_set}
    delta = {f: v for f, v in wanted.items() if current.record.get(f) != v}
    if not delta:
        return False
    check_record({**current.record, **delta}, ent.code)
    await check_unique(session, {f: v for f, v in delta.items() if f in ("customsCode", "uscc")}, ent.code)
    gated = {} if caller.is_operator else {f: v for f, v in delta.items() if f in NEEDS_APPROVAL}
    now = {f: v for f, v in delta.items() if f not in gated}
    if gated and await pending_row(session, ent.code) is not None:
        raise Problem(409, "Conflict", f"enterprise {ent.code} already has a change waiting for the operator's approval")
    by = author(caller)
    if now:
        row = EnterpriseVersion(
            enterprise_code=ent.code, version=await next_version(session, ent.code), record={**current.record, **now},
            status=ent.status, kind="changed", state=ACTIVE, changed_fields=[f for f in FIELDS if f in now], created_by=by,
        )
        add_version(session, row)
        take_effect(session, policy, ent, current, row)
        await session.flush()
        current = row
    if gated:
        add_version(session, EnterpriseVersion(
            enterprise_code=ent.code, version=await next_version(session, ent.code), record={**current.record, **gated},
            status=ent.status, kind="changed", state=PENDING, changed_fields=[f for f in FIELDS if f in gated], created_by=by,
        ))
        await session.flush()
    return bool(gated)


async def decide(
    session: AsyncSession, policy: SharingPolicy, ent: Enterprise, version: int, approve: bool, note: str | None
) -> None:
    """The operator's decision on a pending version."""
    row = await version_row(session, ent.code, version)
    if row is None:
        raise Problem(404, "Not Found", f"enterprise {ent.code} has no version {version}")
    if row.state != PENDING:
        raise Problem(409, "Conflict", f"version {version} of {ent.code} is {row.state}, not pending")
    row.decided_at = utcnow()
    row.decision_note = note
    if not approve:
        row.state = REJECTED
        trail.note(session, audit.registration_decided(ent.code, version, record=row.record, approved=False))
        return
    if ent.status == "cancelled":
        raise Problem(409, "Conflict", f"enterprise {ent.code} is cancelled; its registration can no longer change")
    current = await current_row(session, ent, persist=True)
    # Other changes may have taken effect since it was filed: apply its own fields to the current record.
    record = {**current.record, **{f: row.record.get(f) for f in row.changed_fields}}
    check_record(record, ent.code)
    await check_unique(session, {f: record.get(f) for f in ("customsCode", "uscc")}, ent.code)
    row.record = record
    row.status = ent.status
    trail.note(session, audit.registration_decided(ent.code, version, record=record, approved=True))
    take_effect(session, policy, ent, current, row)
    await session.flush()


async def lifecycle(session: AsyncSession, policy: SharingPolicy, ent: Enterprise, action: str, note: str | None) -> None:
    """Suspend, reinstate or cancel: a new version with the same record and the new status."""
    sources, status, kind = LIFECYCLE[action]
    if ent.status not in sources:
        raise Problem(409, "Conflict", f"enterprise {ent.code} is {ent.status}; it cannot be {'reinstated' if action == 'reinstate' else kind}")
    current = await current_row(session, ent, persist=True)
    now = utcnow()
    if status == "cancelled":
        pending = await pending_row(session, ent.code)
        if pending is not None:
            pending.state, pending.decided_at, pending.decision_note = REJECTED, now, "the enterprise was cancelled"
    row = EnterpriseVersion(
        enterprise_code=ent.code, version=await next_version(session, ent.code), record=current.record, status=status,
        kind=kind, state=ACTIVE, changed_fields=["status"], created_by="operator", decided_at=now, decision_note=note,
    )
    add_version(session, row)
    take_effect(session, policy, ent, current, row)
    await session.flush()


# ---- keys ----------------------------------------------------------------------------------------------


def key_out(k: ApiKey) -> dict:
    return {"id": k.id, "prefix": k.prefix, "createdAt": iso(k.created_at), "revokedAt": iso(k.revoked_at)}


async def issue_key(session: AsyncSession, *, enterprise_code: str | None = None, regulator: str | None = None,
                    revoke_others: bool = False) -> tuple[ApiKey, str]:
    if revoke_others:
        owner = ApiKey.enterprise_code == enterprise_code if enterprise_code else ApiKey.regulator == regulator
        for old in (await session.execute(select(ApiKey).where(owner, ApiKey.revoked_at.is_(None)))).scalars():
            old.revoked_at = utcnow()
    key = new_api_key()
    row = ApiKey(key_hash=hash_key(key), prefix=key[:12], enterprise_code=enterprise_code, regulator=regulator)
    session.add(row)
    await session.flush()
    return row, key


async def keys_of(session: AsyncSession, *, enterprise_code: str | None = None, regulator: str | None = None) -> list[ApiKey]:
    owner = ApiKey.enterprise_code == enterprise_code if enterprise_code else ApiKey.regulator == regulator
    return list((await session.execute(select(ApiKey).where(owner).order_by(ApiKey.id))).scalars())


async def revoke_key(session: AsyncSession, key_id: int, *, enterprise_code: str | None = None, regulator: str | None = None) -> bool:
    owner = ApiKey.enterprise_code == enterprise_code if enterprise_code else ApiKey.regulator == regulator
    row = (await session.execute(select(ApiKey).where(ApiKey.id == key_id, owner))).scalar_one_or_none()
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return True
