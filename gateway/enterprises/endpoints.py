"""The registration record (CEB.md §7): registering, changing, approving, suspending, keys.

The operator registers enterprises and decides on the changes that need approval; an enterprise
reads and changes its own record with its own key. Another enterprise's record does not exist for it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy.exc import IntegrityError

from ..auth import Caller, Principal, require_operator
from ..models import Enterprise
from ..problems import Problem
from ..registry.policy import policy_of
from . import service
from .schemas import (
    FULL_EXAMPLE,
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

router = APIRouter(prefix="/v1", tags=["enterprises"])


ERRORS = {
    401: {"description": "no key, or an unknown or revoked one"},
    403: {"description": "not allowed to do this (or the enterprise is suspended or cancelled)"},
    404: {"description": "no such enterprise, or not yours"},
    409: {"description": "conflicts with the registry's state"},
    422: {"description": "a field is malformed: `errors` names each field and the rule it broke"},
}


def _may_see(caller: Principal, ent: Enterprise | None, code: str) -> Enterprise:
    if caller.is_regulator:
        raise Problem(403, "Forbidden", f"regulators read registrations at /v1/registry/enterprises/{code}")
    if ent is None or (not caller.is_operator and ent.code != caller.code):
        raise service.not_found(code)
    return ent


def _may_act(caller: Principal, ent: Enterprise) -> None:
    """An enterprise changes its own record only while it is active."""
    if not caller.is_operator and ent.status != "active":
        raise Problem(403, "Forbidden", f"enterprise {ent.code} is {ent.status} and cannot file changes")


@router.post(
    "/enterprises", status_code=201, response_model=EnterpriseCreated, summary="Register an enterprise (operator)",
    responses={k: v for k, v in ERRORS.items() if k != 404},
)
async def register_enterprise(
    request: Request,
    caller: Caller,
    payload: Annotated[EnterpriseIn, Body(openapi_examples={
        "full": {"summary": "the full customs registration record", "value": FULL_EXAMPLE},
        "minimal": {"summary": "the minimal form: code, name, roles, dxpId", "value": MINIMAL_EXAMPLE},
    })],
) -> dict:
    """Register an enterprise: version 1 of its record, in effect at once and shared with the regulators.

    A customs code (10) and/or a USCC (18, GB 32100 check character) are required; the enterprise is
    registered under its customs code if it has one, else its USCC. The API key in the answer is shown once.
    """
    require_operator(caller)
    try:
        async with service.writing(request.app) as session:
            ent, key = await service.register(session, policy_of(request.app), payload)
    except IntegrityError:
        raise Problem(409, "Conflict", "an enterprise with this customs code or USCC is already registered") from None
    return {"code": ent.code, "apiKey": key, "version": 1, "status": "active"}


@router.get("/enterprises/{code}", response_model=EnterpriseOut, summary="Read a registration", responses=ERRORS)
async def get_enterprise(code: Code, request: Request, caller: Caller) -> dict:
    """The record in effect, its status and version, and the change waiting for approval if there is one."""
    async with request.app.state.sessions() as session:
        ent = _may_see(caller, await service.resolve(session, code), code)
        return await service.enterprise_out(session, ent)


@router.patch(
    "/enterprises/{code}", response_model=EnterpriseOut, summary="Change a registration",
    responses={**ERRORS, 202: {"description": "accepted: the identity or roles change waits for the operator's approval", "model": EnterpriseOut}},
)
async def change_enterprise(
    code: Code,
    request: Request,
    response: Response,
    caller: Caller,
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
    async with service.writing(request.app) as session:
        ent = _may_see(caller, await service.resolve(session, code), code)
        _may_act(caller, ent)
        if await service.change(session, policy_of(request.app), ent, payload, caller):
            response.status_code = 202
        return await service.enterprise_out(session, ent)


@router.get("/enterprises/{code}/versions", response_model=VersionsOut, summary="Every version of a registration", responses=ERRORS)
async def list_versions(code: Code, request: Request, caller: Caller) -> dict:
    async with request.app.state.sessions() as session:
        ent = _may_see(caller, await service.resolve(session, code), code)
        return {"code": ent.code, "versions": await service.versions(session, ent)}


async def _decide(request: Request, caller: Principal, code: str, version: int, approve: bool, payload: Note | None) -> dict:
    require_operator(caller)
    async with service.writing(request.app) as session:
        ent = _may_see(caller, await service.resolve(session, code), code)
        await service.decide(session, policy_of(request.app), ent, version, approve, payload.note if payload else None)
        return await service.enterprise_out(session, ent)


NoteBody = Annotated[Note | None, Body(openapi_examples={"note": {"value": {"note": "matches the business licence"}}})]


@router.post("/enterprises/{code}/versions/{version}/approve", response_model=EnterpriseOut,
             summary="Approve a pending change (operator)", responses=ERRORS)
async def approve_version(code: Code, version: int, request: Request, caller: Caller, payload: NoteBody = None) -> dict:
    """The pending version takes effect and is shared with the regulators."""
    return await _decide(request, caller, code, version, True, payload)


@router.post("/enterprises/{code}/versions/{version}/reject", response_model=EnterpriseOut,
             summary="Reject a pending change (operator)", responses=ERRORS)
async def reject_version(code: Code, version: int, request: Request, caller: Caller, payload: NoteBody = None) -> dict:
    """The pending version is kept, marked rejected, and never shared."""
    return await _decide(request, caller, code, version, False, payload)


async def _lifecycle(request: Request, caller: Principal, code: str, action: str, payload: Note | None) -> dict:
    require_operator(caller)
    async with service.writing(request.app) as session:
        ent = _may_see(caller, await service.resolve(session, code), code)
        await service.lifecycle(session, policy_of(request.app), ent, action, payload.note if payload else None)
        return await service.enterprise_out(session, ent)


@router.post("/enterprises/{code}/suspend", response_model=EnterpriseOut, summary="Suspend an enterprise (operator)", responses=ERRORS)
async def suspend(code: Code, request: Request, caller: Caller, payload: NoteBody = None) -> dict:
    """A suspended enterprise cannot file, and its codes fail every check, until it is reinstated."""
    return await _lifecycle(request, caller, code, "suspend", payload)


@router.post("/enterprises/{code}/reinstate", response_model=EnterpriseOut, summary="Reinstate a suspended enterprise (operator)", responses=ERRORS)
async def reinstate(code: Code, request: Request, caller: Caller, payload: NoteBody = None) -> dict:
    return await _lifecycle(request, caller, code, "reinstate", payload)


@router.post("/enterprises/{code}/cancel", response_model=EnterpriseOut, summary="Cancel a registration for good (operator)", responses=ERRORS)
async def cancel(code: Code, request: Request, caller: Caller, payload: NoteBody = None) -> dict:
    """Final: a cancelled enterprise cannot file or change its record again. Its change waiting for approval is rejected."""
    return await _lifecycle(request, caller, code, "cancel", payload)


@router.post("/enterprises/{code}/keys", status_code=201, response_model=KeyCreated, summary="Issue a new API key", responses=ERRORS)
async def new_key(
    code: Code, request: Request, caller: Caller,
    payload: Annotated[KeyRequest | None, Body(openapi_examples={
        "rotate": {"summary": "rotate: a new key, every other one revoked", "value": {"revokeOthers": True}},
        "add": {"summary": "an additional key", "value": {"revokeOthers": False}},
    })] = None,
) -> dict:
    """A new key for the enterprise, shown once. With `revokeOthers`, every other key stops working (rotation)."""
    async with service.writing(request.app) as session:
        ent = _may_see(caller, await service.resolve(session, code), code)
        _may_act(caller, ent)
        if ent.status == "cancelled":
            raise Problem(409, "Conflict", f"enterprise {ent.code} is cancelled")
        row, key = await service.issue_key(session, enterprise_code=ent.code, revoke_others=bool(payload and payload.revokeOthers))
        return {"id": row.id, "apiKey": key, "prefix": row.prefix}


@router.get("/enterprises/{code}/keys", response_model=KeysOut, summary="List API keys (never the keys themselves)", responses=ERRORS)
async def list_keys(code: Code, request: Request, caller: Caller) -> dict:
    async with request.app.state.sessions() as session:
        ent = _may_see(caller, await service.resolve(session, code), code)
        return {"keys": [service.key_out(k) for k in await service.keys_of(session, enterprise_code=ent.code)]}


@router.delete("/enterprises/{code}/keys/{key_id}", status_code=204, summary="Revoke an API key", responses=ERRORS)
async def revoke_key(code: Code, key_id: int, request: Request, caller: Caller) -> Response:
    """The key stops working at once (other server processes notice within `SWX_AUTH_CACHE_SECONDS`,
    2 s by default). Revoking a revoked key changes nothing."""
    async with service.writing(request.app) as session:
        ent = _may_see(caller, await service.resolve(session, code), code)
        if not await service.revoke_key(session, key_id, enterprise_code=ent.code):
            raise Problem(404, "Not Found", f"enterprise {ent.code} has no key {key_id}")
    return Response(status_code=204)


