"""The registration record (CEB.md §7): registering, changing, approving, suspending, keys.

The operator registers enterprises and decides on the changes that need approval; an enterprise
reads and changes its own record with its own key. Another enterprise's record does not exist for it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from ..auth import Caller, Operator, Principal
from ..auth import repository as keys
from ..db import ReadSession, RegistryWriteSession
from ..errors import Forbidden, Invalid
from ..problems import responses
from . import service
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
from .schemas import (
    FULL_EXAMPLE,
    KEY_REQUEST_EXAMPLES,
    MINIMAL_EXAMPLE,
    Code,
    EnterpriseCreated,
    EnterpriseIn,
    EnterpriseOut,
    KeyCreated,
    KeyRequest,
    KeysOut,
    Note,
    RecordChange,
    VersionsOut,
)
from .sharing import policy_of

router = APIRouter(prefix="/v1", tags=["enterprises"])


READ = responses(RegulatorReadsRegistry, EnterpriseNotFound)
DECIDE = responses(Forbidden, EnterpriseNotFound, VersionNotFound, VersionNotPending, EnterpriseCancelled, CodeTaken, Invalid)
LIFECYCLE = responses(Forbidden, EnterpriseNotFound, StatusTransition)


@router.post(
    "/enterprises", status_code=201, response_model=EnterpriseCreated, summary="Register an enterprise (operator)",
    responses=responses(Forbidden, CodeTaken, Invalid),
)
async def register_enterprise(
    request: Request,
    caller: Operator,
    session: RegistryWriteSession,
    payload: Annotated[EnterpriseIn, Body(openapi_examples={
        "full": {"summary": "the full customs registration record", "value": FULL_EXAMPLE},
        "minimal": {"summary": "the minimal form: code, name, roles, dxpId", "value": MINIMAL_EXAMPLE},
    })],
) -> dict:
    """Register an enterprise: version 1 of its record, in effect at once and shared with the regulators.

    A customs code (10) and/or a USCC (18, GB 32100 check character) are required; the enterprise is
    registered under its customs code if it has one, else its USCC. The API key in the answer is shown once.
    """
    ent, key = await service.register(session, policy_of(request.app), payload)
    return {"code": ent.code, "apiKey": key, "version": 1, "status": ent.status}


@router.get("/enterprises/{code}", response_model=EnterpriseOut, summary="Read a registration", responses=READ)
async def get_enterprise(code: Code, caller: Caller, session: ReadSession) -> dict:
    """The record in effect, its status and version, and the change waiting for approval if there is one."""
    return await service.enterprise_out(session, await service.visible(session, caller, code))


@router.patch(
    "/enterprises/{code}", response_model=EnterpriseOut, summary="Change a registration",
    responses={**responses(RegulatorReadsRegistry, EnterpriseInactive, EnterpriseNotFound, EnterpriseCancelled, ChangePending,
                           CodeTaken, Invalid),
               202: {"description": "accepted: the identity or roles change waits for the operator's approval", "model": EnterpriseOut}},
)
async def change_enterprise(
    code: Code,
    request: Request,
    response: Response,
    caller: Caller,
    session: RegistryWriteSession,
    payload: Annotated[RecordChange, Body(openapi_examples={
        "name": {"summary": "a new name (identity: waits for approval when the enterprise files it)", "value": {"name": "杭州云栈国际贸易有限公司"}},
        "contact": {"summary": "a new contact (takes effect at once)", "value": {"contact": {"name": "李强", "email": "li@yunzhan.example"}}},
        "validity": {"summary": "a new validity period", "value": {"validFrom": "2025-01-01", "validTo": "2030-12-31"}},
    })],
) -> dict:
    """File a change: a new version; nothing is overwritten.

    Changes to identity (customsCode, uscc, name) or roles filed by the enterprise wait for the
    operator's approval (`202`, one at a time); other changes, and all the operator's, take effect at
    once (`200`). Send only the fields that change; `null` clears an optional field.
    """
    ent = await service.visible(session, caller, code)
    service.may_act(caller, ent)
    if await service.change(session, policy_of(request.app), ent, payload, caller):
        response.status_code = 202
    return await service.enterprise_out(session, ent)


@router.get("/enterprises/{code}/versions", response_model=VersionsOut, summary="Every version of a registration", responses=READ)
async def list_versions(code: Code, caller: Caller, session: ReadSession) -> dict:
    ent = await service.visible(session, caller, code)
    return {"code": ent.code, "versions": await service.versions(session, ent)}


async def _decide(request: Request, session: AsyncSession, caller: Principal, code: str, version: int, approve: bool,
                  payload: Note | None) -> dict:
    ent = await service.visible(session, caller, code)
    await service.decide(session, policy_of(request.app), ent, version, approve, payload.note if payload else None)
    return await service.enterprise_out(session, ent)


NoteBody = Annotated[Note | None, Body(openapi_examples={"note": {"value": {"note": "matches the business licence"}}})]


@router.post("/enterprises/{code}/versions/{version}/approve", response_model=EnterpriseOut,
             summary="Approve a pending change (operator)", responses=DECIDE)
async def approve_version(
    code: Code, version: int, request: Request, caller: Operator, session: RegistryWriteSession, payload: NoteBody = None,
) -> dict:
    """The pending version takes effect and is shared with the regulators."""
    return await _decide(request, session, caller, code, version, True, payload)


@router.post("/enterprises/{code}/versions/{version}/reject", response_model=EnterpriseOut,
             summary="Reject a pending change (operator)", responses=DECIDE)
async def reject_version(
    code: Code, version: int, request: Request, caller: Operator, session: RegistryWriteSession, payload: NoteBody = None,
) -> dict:
    """The pending version is kept, marked rejected, and never shared."""
    return await _decide(request, session, caller, code, version, False, payload)


async def _lifecycle(request: Request, session: AsyncSession, caller: Principal, code: str, action: str,
                     payload: Note | None) -> dict:
    ent = await service.visible(session, caller, code)
    await service.lifecycle(session, policy_of(request.app), ent, action, payload.note if payload else None)
    return await service.enterprise_out(session, ent)


@router.post("/enterprises/{code}/suspend", response_model=EnterpriseOut, summary="Suspend an enterprise (operator)", responses=LIFECYCLE)
async def suspend(
    code: Code, request: Request, caller: Operator, session: RegistryWriteSession, payload: NoteBody = None,
) -> dict:
    """A suspended enterprise cannot file, and its codes fail every check, until it is reinstated."""
    return await _lifecycle(request, session, caller, code, "suspend", payload)


@router.post("/enterprises/{code}/reinstate", response_model=EnterpriseOut, summary="Reinstate a suspended enterprise (operator)", responses=LIFECYCLE)
async def reinstate(
    code: Code, request: Request, caller: Operator, session: RegistryWriteSession, payload: NoteBody = None,
) -> dict:
    return await _lifecycle(request, session, caller, code, "reinstate", payload)


@router.post("/enterprises/{code}/cancel", response_model=EnterpriseOut, summary="Cancel a registration for good (operator)", responses=LIFECYCLE)
async def cancel(
    code: Code, request: Request, caller: Operator, session: RegistryWriteSession, payload: NoteBody = None,
) -> dict:
    """Final: a cancelled enterprise cannot file or change its record again. Its change waiting for approval is rejected."""
    return await _lifecycle(request, session, caller, code, "cancel", payload)


@router.post("/enterprises/{code}/keys", status_code=201, response_model=KeyCreated, summary="Issue a new API key",
             responses=responses(RegulatorReadsRegistry, EnterpriseInactive, EnterpriseNotFound, EnterpriseCancelled))
async def new_key(
    code: Code, caller: Caller, session: RegistryWriteSession,
    payload: Annotated[KeyRequest | None, Body(openapi_examples=KEY_REQUEST_EXAMPLES)] = None,
) -> dict:
    """A new key for the enterprise, shown once. With `revokeOthers`, every other key stops working (rotation)."""
    row, key = await service.new_key_for(session, caller, code, revoke_others=bool(payload and payload.revokeOthers))
    return {"id": row.id, "apiKey": key, "prefix": row.prefix}


@router.get("/enterprises/{code}/keys", response_model=KeysOut, summary="List API keys (never the keys themselves)", responses=READ)
async def list_keys(code: Code, caller: Caller, session: ReadSession) -> dict:
    ent = await service.visible(session, caller, code)
    return {"keys": [service.key_out(k) for k in await keys.keys_of(session, enterprise_code=ent.code)]}


@router.delete("/enterprises/{code}/keys/{key_id}", status_code=204, summary="Revoke an API key",
               responses=responses(RegulatorReadsRegistry, EnterpriseNotFound, KeyNotFound))
async def revoke_key(code: Code, key_id: int, caller: Caller, session: RegistryWriteSession) -> Response:
    """The key stops working at once (other server processes notice within `SWX_AUTH_CACHE_SECONDS`,
    2 s by default). Revoking a revoked key changes nothing."""
    ent = await service.visible(session, caller, code)
    await service.revoke_key(session, key_id, enterprise_code=ent.code)
    return Response(status_code=204)
