"""Who is calling: every request carries ``Authorization: Bearer <key>``.

The operator's token comes from the settings; enterprises' keys are random 256-bit strings stored as
their SHA-256 (a slow password hash adds nothing to keys nobody can guess).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request

from ..errors import Forbidden, NotFound, Unauthorized
from . import repository

KEY_PREFIX = "swx_"


REGULATORS = ("customs", "inspection", "tax", "fx")


class UnknownRegulator(NotFound):
    type = "unknown-regulator"
    description = "Regulators are customs, inspection, tax and fx."


def regulator_named(name: str) -> str:
    if name not in REGULATORS:
        raise UnknownRegulator(f"no regulator {name}; regulators are {', '.join(REGULATORS)}")
    return name


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["operator", "enterprise", "regulator"]
    code: str | None = None  # the enterprise's registered code
    name: str | None = None
    dxp_id: str | None = None
    roles: tuple[str, ...] = ()
    status: str = "active"  # the enterprise's lifecycle status
    regulator: str | None = None  # customs, inspection, tax or fx
    codes: tuple[str, ...] = ()  # every code the enterprise is known by (customs code, USCC)

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    @property
    def is_regulator(self) -> bool:
        return self.kind == "regulator"


OPERATOR = Principal("operator")


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyCache:
    """Recently seen keys and who they belong to, for a few seconds.

    Every request is authenticated, and looking the key up costs a transaction; a filing costs
    little more. Only known keys are kept. Registry writes in this process clear it (see
    writes marked ``Effect.CREDENTIALS`` in ``gateway/db.py``); another process's change (a revoked key, a suspension) is
    seen here within ``ttl`` seconds.
    """

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._found: dict[str, tuple[float, Principal]] = {}
        self._inflight: dict[str, asyncio.Future[Principal | None]] = {}
        self._generation = 0

    def get(self, key_hash: str) -> Principal | None:
        hit = self._found.get(key_hash)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key_hash: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._found) >= self.size:
            self._found.clear()
        self._found[key_hash] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        self._found.clear()
        self._generation += 1  # lookups under way may have read the old rows: their answers are not kept

    async def single_flight(self, key_hash: str, look_up) -> Principal | None:
        """``look_up()`` once for concurrent misses of one key; a known key is remembered."""
        flight = self._inflight.get(key_hash)
        if flight is None:
            generation = self._generation
            flight = self._inflight[key_hash] = asyncio.ensure_future(look_up())
            flight.add_done_callback(lambda _f: self._inflight.pop(key_hash, None))
            principal = await asyncio.shield(flight)
            if principal is not None and generation == self._generation:
                self.put(key_hash, principal)
            return principal
        return await asyncio.shield(flight)


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("send 'Authorization: Bearer <key>' with your swx API key")
    state = request.app.state
    if hmac.compare_digest(token.encode(), state.operator_token.encode()):
        return OPERATOR
    digest = hash_key(token)
    cache: KeyCache | None = getattr(state, "key_cache", None)
    if cache is None:
        principal = await _look_up(state, digest)
    elif (known := cache.get(digest)) is not None:
        return known
    else:
        # One lookup per key at a time: when a busy key's entry runs out, its concurrent requests
        # share one query instead of each taking a connection at the same moment.
        principal = await cache.single_flight(digest, lambda: _look_up(state, digest))
    if principal is None:
        raise Unauthorized("this API key is unknown or revoked")
    return principal


async def _look_up(state, digest: str) -> Principal | None:
    async with state.db.read() as session:
        found = await repository.key_owner(session, digest)
    if found is None:
        return None
    key, ent = found
    if key.regulator:
        return Principal("regulator", regulator=key.regulator)
    codes = tuple(c for c in (ent.code, ent.customs_code, ent.uscc) if c)
    return Principal(
        "enterprise", ent.code, ent.name, ent.dxp_id, tuple(ent.roles), ent.status, codes=tuple(dict.fromkeys(codes))
    )



def require_operator(principal: Principal) -> None:
    if not principal.is_operator:
        raise Forbidden("only the operator may do this")


def require_enterprise(principal: Principal) -> None:
    if principal.kind != "enterprise":
        raise Forbidden("filings are made by enterprises with their own key, not by the operator or a regulator")


def require_active_enterprise(principal: Principal) -> None:
    require_enterprise(principal)
    if principal.status != "active":
        raise Forbidden(f"enterprise {principal.code} is {principal.status} and cannot file")


def require_regulator(principal: Principal) -> None:
    if not principal.is_regulator:
        raise Forbidden("only a regulator (customs, inspection, tax, fx) may read the shared registry")


def _requiring(check: Callable[[Principal], None]) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the authenticated caller, once ``check`` let it through."""

    async def caller(principal: Principal = Depends(authenticate)) -> Principal:
        check(principal)
        return principal

    return caller


# Endpoint parameters: the authenticated caller, or the caller required to be of one kind.
Caller = Annotated[Principal, Depends(authenticate)]
Operator = Annotated[Principal, Depends(_requiring(require_operator))]
RegulatorCaller = Annotated[Principal, Depends(_requiring(require_regulator))]
ActiveEnterprise = Annotated[Principal, Depends(_requiring(require_active_enterprise))]
