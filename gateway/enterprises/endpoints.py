"""Registering enterprises (the operator's job) and issuing their API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.exc import IntegrityError

from schemas.identifiers import enterprise_code_problem

from ..auth import Principal, authenticate, hash_key, new_api_key, require_operator
from ..models import ApiKey, Enterprise
from ..problems import Problem

router = APIRouter(prefix="/v1", tags=["enterprises"])

# Roles of CEB.md §7.
ROLES = ("ebp", "ebc", "pay", "logistics", "agent", "assure", "area", "operator")


class EnterpriseIn(BaseModel):
    code: str = Field(description="10-character customs code or 18-character USCC", examples=["3301960AB1"])
    name: str = Field(min_length=1, max_length=100, examples=["杭州云栈跨境电子商务有限公司"])
    roles: list[str] = Field(min_length=1, examples=[["ebp", "ebc"]])
    dxpId: str | None = Field(default=None, max_length=30, examples=["DXPENT0000012345"])

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        problem = enterprise_code_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: list[str]) -> list[str]:
        unknown = [r for r in v if r not in ROLES]
        if unknown:
            raise ValueError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
        return sorted(set(v), key=ROLES.index)


class EnterpriseCreated(BaseModel):
    code: str
    apiKey: str = Field(description="shown once; swx keeps only its hash")


@router.post("/enterprises", status_code=201, response_model=EnterpriseCreated, summary="Register an enterprise")
async def register_enterprise(
    payload: EnterpriseIn, request: Request, caller: Annotated[Principal, Depends(authenticate)]
) -> EnterpriseCreated:
    require_operator(caller)
    key = new_api_key()
    async with request.app.state.sessions() as session:
        try:
            async with session.begin():
                session.add(Enterprise(code=payload.code, name=payload.name, roles=payload.roles, dxp_id=payload.dxpId))
                await session.flush()
                session.add(ApiKey(key_hash=hash_key(key), prefix=key[:12], enterprise_code=payload.code))
        except IntegrityError:
            raise Problem(409, "Conflict", f"enterprise {payload.code} is already registered") from None
    return EnterpriseCreated(code=payload.code, apiKey=key)
