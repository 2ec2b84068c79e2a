"""The registry as the regulators see it (CEB.md §7: registered once, shared with many parties).

Regulators (customs, inspection, tax, fx) read registrations with their own keys, each only in the
view the sharing policy gives it, and follow new registrations and changes through a feed. Every
registration a regulator receives is logged, and the enterprise can see that log.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response

from ..auth import REGULATORS, Caller, Operator, RegulatorCaller, UnknownRegulator, regulator_named, require_operator
from ..auth import repository as keys
from ..db import ReadSession, RegistryWriteSession, WriteSession
from ..enterprises import service as enterprises
from ..enterprises.errors import EnterpriseNotFound, KeyNotFound, VersionNotFound
from ..enterprises.schemas import KEY_REQUEST_EXAMPLES, Code, KeyRequest
from ..enterprises.sharing import policy_of
from ..errors import Forbidden
from ..problems import responses
from . import service
from .errors import AccessLogPrivate, NotShared
from .schemas import (
    ACCESS_LOG_EXAMPLE,
    CHANGES_EXAMPLE,
    POLICY_EXAMPLE,
    VIEW_EXAMPLE,
    RegulatorKeyCreated,
)

router = APIRouter(prefix="/v1", tags=["registry"])

Regulator = Annotated[str, Path(description=f"one of {', '.join(REGULATORS)}", examples=["customs"])]
After = Annotated[int, Query(ge=0, description="the cursor: `next` of the previous page; 0 for the start")]
Limit = Annotated[int, Query(ge=1, le=500, description="at most this many items")]


def _json(example: object, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"example": example}}}


@router.post("/regulators/{name}/keys", status_code=201, response_model=RegulatorKeyCreated,
             summary="Issue a regulator's API key (operator)", responses=responses(Forbidden, UnknownRegulator))
async def regulator_key(
    name: Regulator, caller: Operator, session: RegistryWriteSession,
    payload: Annotated[KeyRequest | None, Body(openapi_examples=KEY_REQUEST_EXAMPLES)] = None,
) -> dict:
    """A key for a regulator, shown once. It reads the registry in that regulator's view and posts its
    verdicts. With `revokeOthers`, the regulator's other keys stop working (rotation; the stand-ins
    take fresh keys this way each time they start)."""
    row, key = await enterprises.issue_key(session, regulator=regulator_named(name),
                                           revoke_others=bool(payload and payload.revokeOthers))
    return {"apiKey": key, "id": row.id, "prefix": row.prefix}


@router.get("/regulators/{name}/keys", summary="List a regulator's API keys (operator)",
            responses={**responses(Forbidden, UnknownRegulator), 200: _json({"keys": [{
                "id": 2, "prefix": "swx_Q1w2E3r4", "createdAt": "2025-01-01T08:00:00+00:00", "revokedAt": None}]},
                "the keys, never the keys themselves")})
async def regulator_keys(name: Regulator, caller: Operator, session: ReadSession) -> dict:
    found = await keys.keys_of(session, regulator=regulator_named(name))
    return {"keys": [enterprises.key_out(k) for k in found]}


@router.delete("/regulators/{name}/keys/{key_id}", status_code=204, summary="Revoke a regulator's API key (operator)",
               responses=responses(Forbidden, UnknownRegulator, KeyNotFound))
async def revoke_regulator_key(name: Regulator, key_id: int, caller: Operator, session: RegistryWriteSession) -> Response:
    await enterprises.revoke_key(session, key_id, regulator=regulator_named(name))
    return Response(status_code=204)


@router.get("/registry/policy", summary="The sharing policy: which fields each regulator receives",
            responses={**responses(Forbidden), 200: _json(POLICY_EXAMPLE, "a regulator sees its own view; the operator sees every view")})
async def sharing_policy(request: Request, caller: Caller) -> dict:
    policy = policy_of(request.app)
    if caller.is_regulator:
        reg = str(caller.regulator)
        return {"regulators": {reg: list(policy.fields_for(reg) or [])} if reg in policy.views else {},
                "metadata": ["code", "version", "status"]}
    require_operator(caller)
    return {"regulators": {r: list(f) for r, f in policy.views.items()}, "metadata": ["code", "version", "status"]}


@router.get("/registry/enterprises/{code}", summary="Read a registration in your view (regulators)",
            responses={**responses(Forbidden, NotShared, EnterpriseNotFound, VersionNotFound),
                       200: _json(VIEW_EXAMPLE, "the fields of the record the sharing policy gives you, with code, version and status")})
async def registry_read(
    code: Code, request: Request, caller: RegulatorCaller, session: WriteSession,
    version: Annotated[int | None, Query(ge=1, description="a version that took effect; the one in effect when absent")] = None,
) -> dict:
    """The registration in effect, or `?version=n`, holding only the fields your view allows.
    Pending and rejected versions are never shared. Every read is logged for the enterprise to see."""
    return await service.read(session, policy_of(request.app), str(caller.regulator), code, version)


@router.get("/registry/changes", summary="Follow new registrations and changes (regulators)",
            responses={**responses(Forbidden, NotShared),
                       200: _json(CHANGES_EXAMPLE, "the next changes, oldest first; pass `next` as `after` for the following ones")})
async def registry_changes(
    request: Request, caller: RegulatorCaller, session: WriteSession, after: After = 0, limit: Limit = 100,
) -> dict:
    """Every version that took effect (registered, changed, suspended, reinstated, cancelled), each in your view.
    Each record delivered is logged for the enterprise to see."""
    return await service.changes(session, policy_of(request.app), str(caller.regulator), after, limit)


@router.get("/enterprises/{code}/access-log", tags=["enterprises"], summary="Who read this registration",
            responses={**responses(AccessLogPrivate, EnterpriseNotFound),
                       200: _json(ACCESS_LOG_EXAMPLE, "every registration of this enterprise a regulator received")})
async def access_log(code: Code, caller: Caller, session: ReadSession, after: After = 0, limit: Limit = 100) -> dict:
    """Every time a regulator received this enterprise's registration: who, which version, which fields,
    when, and whether by reading it or through the changes feed. The enterprise and the operator see it."""
    return await service.access_log(session, caller, code, after, limit)
