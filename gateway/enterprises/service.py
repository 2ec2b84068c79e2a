"""The registration record's versions and lifecycle, and the enterprises' keys.

Every change is a new version in ``enterprise_versions``; nothing is overwritten. The ``enterprises``
row mirrors the version in effect, and each version that takes effect is announced to every
regulator the sharing policy names (``registry_shares``, the regulators' changes feed).

Writes to the registry run in the unit of work with ``Lock.REGISTRY`` (gateway/db.py): serialized on
PostgreSQL by a transaction-scoped advisory lock (so that version numbers never collide and feed
cursors are committed in order), on SQLite by the writer lock. Every version, decision and share is
noted for the audit ledger in the same transaction; changes of keys, roles or status mark
``Effect.CREDENTIALS`` so that cached keys are forgotten.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.times import iso, utcnow

from .. import trail
from ..audit import events as audit
from ..auth import Principal, hash_key, new_api_key
from ..auth import repository as keys
from ..db import Effect, touch
from ..errors import Invalid
from ..models import ApiKey, Enterprise
from ..routing.outbox import route_registration
from . import repository
from .certificates import describe
from .errors import (
    ChangePending,
    CodeTaken,
    EnterpriseCancelled,
    EnterpriseInactive,
    EnterpriseNotFound,
    KeyNotFound,
    RegulatorReadsRegistry,
    StatusTransition,
    VersionNotFound,
    VersionNotPending,
)
from .models import EnterpriseVersion, RegistryShare, VersionKind, VersionState
from .record import FIELDS, NEEDS_APPROVAL, EnterpriseStatus
from .schemas import EnterpriseIn, RecordChange
from .sharing import SharingPolicy

# Lifecycle actions: the statuses each may start from, the status it leads to, and the version's kind.
LIFECYCLE = {
    "suspend": ({EnterpriseStatus.ACTIVE}, EnterpriseStatus.SUSPENDED, VersionKind.SUSPENDED),
    "reinstate": ({EnterpriseStatus.SUSPENDED}, EnterpriseStatus.ACTIVE, VersionKind.REINSTATED),
    "cancel": ({EnterpriseStatus.ACTIVE, EnterpriseStatus.SUSPENDED}, EnterpriseStatus.CANCELLED, VersionKind.CANCELLED),
}


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
            raise Invalid.fields(("code", f"is {payload.code} but {target} is {record[target]}: they must be the same"))
        record[target] = payload.code
    if not record["customsCode"] and not record["uscc"]:
        raise Invalid.fields(("code", "a registration needs a customsCode (10 characters) or a uscc (18 characters), or both"))
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
        raise Invalid.fields(*errors)


async def check_unique(session: AsyncSession, record: dict, own_code: str | None = None) -> None:
    for field in ("customsCode", "uscc"):
        value = record.get(field)
        if value and await repository.code_taken(session, field, value, own_code):
            raise CodeTaken(f"{field} {value} is already registered to another enterprise", field=field)


def mirror(session: AsyncSession, ent: Enterprise, record: dict, version: int, status: str) -> None:
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
    touch(session, Effect.CREDENTIALS)  # roles, status or validity: what authentication and checks read


# ---- reading ------------------------------------------------------------------------------------------


async def visible(session: AsyncSession, caller: Principal, code: str) -> Enterprise:
    """The enterprise ``code`` names, as the caller may see it: the operator any, an enterprise itself only."""
    if caller.is_regulator:
        raise RegulatorReadsRegistry(f"regulators read registrations at /v1/registry/enterprises/{code}")
    ent = await repository.resolve(session, code)
    if ent is None or (not caller.is_operator and ent.code != caller.code):
        raise EnterpriseNotFound(code)
    return ent


def may_act(caller: Principal, ent: Enterprise) -> None:
    """An enterprise changes its own record only while it is active."""
    if not caller.is_operator and ent.status != EnterpriseStatus.ACTIVE:
        raise EnterpriseInactive(f"enterprise {ent.code} is {ent.status} and cannot file changes")


async def current_row(session: AsyncSession, ent: Enterprise, *, persist: bool = False) -> EnterpriseVersion:
    row = await repository.version_row(session, ent.code, ent.version)
    if row is None:  # registered before versions were kept: its effective row is its first version
        row = EnterpriseVersion(
            enterprise_code=ent.code, version=ent.version, status=ent.status, kind=VersionKind.REGISTERED, state=VersionState.ACTIVE,
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


def version_out(v: EnterpriseVersion) -> dict:
    return {
        "version": v.version, "state": v.state, "kind": v.kind, "status": v.status, "changedFields": v.changed_fields,
        "createdBy": v.created_by, "createdAt": iso(v.created_at), "decidedAt": iso(v.decided_at), "note": v.decision_note,
        "record": v.record,
    }


async def enterprise_out(session: AsyncSession, ent: Enterprise) -> dict:
    current = await current_row(session, ent)
    pending = await repository.pending_row(session, ent.code)
    return {
        "code": ent.code, "status": ent.status, "version": ent.version, "record": current.record,
        "createdAt": iso(ent.created_at), "updatedAt": iso(ent.updated_at),
        "pending": None if pending is None else {
            "version": pending.version, "changedFields": pending.changed_fields, "record": pending.record,
            "createdBy": pending.created_by, "createdAt": iso(pending.created_at),
        },
    }


async def versions(session: AsyncSession, ent: Enterprise) -> list[dict]:
    rows = await repository.versions_of(session, ent.code)
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
    current.state = VersionState.SUPERSEDED
    row.state = VersionState.ACTIVE
    mirror(session, ent, row.record, row.version, row.status)
    share(session, policy, ent.code, row.version, row.kind, row.record, row.status)


async def register(session: AsyncSession, policy: SharingPolicy, payload: EnterpriseIn) -> tuple[Enterprise, str]:
    record = record_from(payload)
    await check_unique(session, record)
    code = record["customsCode"] or record["uscc"]
    ent = Enterprise(code=code, name=record["name"], roles=record["roles"], status=EnterpriseStatus.ACTIVE, created_at=utcnow())
    mirror(session, ent, record, 1, EnterpriseStatus.ACTIVE)
    session.add(ent)
    try:
        await session.flush()
    except IntegrityError:  # registered by another process between the check and the insert
        raise CodeTaken("an enterprise with this customs code or USCC is already registered") from None
    key = new_api_key()
    session.add(ApiKey(key_hash=hash_key(key), prefix=key[:12], enterprise_code=code))
    add_version(session, EnterpriseVersion(
        enterprise_code=code, version=1, record=record, status=EnterpriseStatus.ACTIVE, kind=VersionKind.REGISTERED, state=VersionState.ACTIVE,
        changed_fields=[f for f in FIELDS if record.get(f) not in (None, [])], created_by="operator",
    ))
    share(session, policy, code, 1, VersionKind.REGISTERED, record, EnterpriseStatus.ACTIVE)
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
    if ent.status == EnterpriseStatus.CANCELLED:
        raise EnterpriseCancelled(f"enterprise {ent.code} is cancelled; its registration can no longer change")
    current = await current_row(session, ent, persist=True)
    wanted = {f: json_value(f, getattr(payload, f)) for f in FIELDS if f in payload.model_fields_set}
    delta = {f: v for f, v in wanted.items() if current.record.get(f) != v}
    if not delta:
        return False
    check_record({**current.record, **delta}, ent.code)
    await check_unique(session, {f: v for f, v in delta.items() if f in ("customsCode", "uscc")}, ent.code)
    gated = {} if caller.is_operator else {f: v for f, v in delta.items() if f in NEEDS_APPROVAL}
    now = {f: v for f, v in delta.items() if f not in gated}
    if gated and await repository.pending_row(session, ent.code) is not None:
        raise ChangePending(f"enterprise {ent.code} already has a change waiting for the operator's approval")
    by = author(caller)
    if now:
        row = EnterpriseVersion(
            enterprise_code=ent.code, version=await repository.next_version(session, ent.code), record={**current.record, **now},
            status=ent.status, kind=VersionKind.CHANGED, state=VersionState.ACTIVE, changed_fields=[f for f in FIELDS if f in now], created_by=by,
        )
        add_version(session, row)
        take_effect(session, policy, ent, current, row)
        await session.flush()
        current = row
    if gated:
        add_version(session, EnterpriseVersion(
            enterprise_code=ent.code, version=await repository.next_version(session, ent.code), record={**current.record, **gated},
            status=ent.status, kind=VersionKind.CHANGED, state=VersionState.PENDING, changed_fields=[f for f in FIELDS if f in gated], created_by=by,
        ))
        await session.flush()
    return bool(gated)


async def decide(
    session: AsyncSession, policy: SharingPolicy, ent: Enterprise, version: int, approve: bool, note: str | None
) -> None:
    """The operator's decision on a pending version."""
    row = await repository.version_row(session, ent.code, version)
    if row is None:
        raise VersionNotFound(f"enterprise {ent.code} has no version {version}")
    if row.state != VersionState.PENDING:
        raise VersionNotPending(f"version {version} of {ent.code} is {row.state}, not pending")
    row.decided_at = utcnow()
    row.decision_note = note
    if not approve:
        row.state = VersionState.REJECTED
        trail.note(session, audit.registration_decided(ent.code, version, record=row.record, approved=False))
        return
    if ent.status == EnterpriseStatus.CANCELLED:
        raise EnterpriseCancelled(f"enterprise {ent.code} is cancelled; its registration can no longer change")
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
        raise StatusTransition(f"enterprise {ent.code} is {ent.status}; it cannot be {'reinstated' if action == 'reinstate' else kind}")
    current = await current_row(session, ent, persist=True)
    now = utcnow()
    if status == EnterpriseStatus.CANCELLED:
        pending = await repository.pending_row(session, ent.code)
        if pending is not None:
            pending.state, pending.decided_at, pending.decision_note = VersionState.REJECTED, now, "the enterprise was cancelled"
    row = EnterpriseVersion(
        enterprise_code=ent.code, version=await repository.next_version(session, ent.code), record=current.record, status=status,
        kind=kind, state=VersionState.ACTIVE, changed_fields=["status"], created_by="operator", decided_at=now, decision_note=note,
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
        await keys.revoke_keys(session, enterprise_code=enterprise_code, regulator=regulator)
    key = new_api_key()
    row = ApiKey(key_hash=hash_key(key), prefix=key[:12], enterprise_code=enterprise_code, regulator=regulator)
    session.add(row)
    await session.flush()
    touch(session, Effect.CREDENTIALS)
    return row, key


async def new_key_for(session: AsyncSession, caller: Principal, code: str, *, revoke_others: bool) -> tuple[ApiKey, str]:
    """A new key for the enterprise ``code`` (itself or the operator asking)."""
    ent = await visible(session, caller, code)
    may_act(caller, ent)
    if ent.status == EnterpriseStatus.CANCELLED:
        raise EnterpriseCancelled(f"enterprise {ent.code} is cancelled")
    return await issue_key(session, enterprise_code=ent.code, revoke_others=revoke_others)


async def revoke_key(session: AsyncSession, key_id: int, *, enterprise_code: str | None = None, regulator: str | None = None) -> None:
    """Revoke one key of an enterprise or a regulator; revoking a revoked key changes nothing."""
    if not await keys.revoke_keys(session, enterprise_code=enterprise_code, regulator=regulator, key_id=key_id):
        raise KeyNotFound(f"{'enterprise ' + enterprise_code if enterprise_code else 'regulator ' + str(regulator)} has no key {key_id}")
    touch(session, Effect.CREDENTIALS)
