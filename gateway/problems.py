"""The edge: every error the gateway answers becomes an RFC 9457 problem here, and only here.

Domain code raises the named classes of ``gateway/errors.py`` (and its domains' ``errors.py``);
this module renders them as ``application/problem+json`` with a ``type`` that resolves to a page
of this window (``/problems/<type>``), lists them in each route's OpenAPI ``responses``, and maps
FastAPI's own request-validation and HTTP errors to the same shape.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from .errors import DomainError, Invalid, NotFound, Unauthorized

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "/problems/"


def type_uri(error: type[DomainError] | DomainError) -> str:
    return TYPE_BASE + error.type


def problem_body(error: DomainError) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_uri(error), "title": error.title, "status": error.status}
    if error.detail:
        out["detail"] = error.detail
    out.update(error.extra)
    return out


def problem_response(error: DomainError) -> Response:
    return Response(orjson.dumps(problem_body(error)), status_code=error.status, media_type=PROBLEM_JSON,
                    headers=error.headers or None)


def responses(*errors: type[DomainError], **described: Any) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route that may answer ``errors`` (besides 401 for every route).

    Errors of one status share an entry whose description names each type; ``described`` adds or
    overrides entries (``{"201": {...}}``) for the route's own answers.
    """
    by_status: dict[int, list[type[DomainError]]] = {}
    for e in (Unauthorized, *errors):  # every route may answer 401
        by_status.setdefault(e.status, [])
        if e not in by_status[e.status]:
            by_status[e.status].append(e)
    out: dict[int | str, dict[str, Any]] = {}
    for status, kinds in sorted(by_status.items()):
        out[status] = {
            "description": "; ".join(f"`{type_uri(k)}` {k.description}" for k in kinds),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"},
                                       "example": {"type": type_uri(kinds[0]), "title": kinds[0].title, "status": status}}},
        }
    for key, value in described.items():
        out[int(key)] = {**out.get(int(key), {}), **value}
    return out

PROBLEM_SCHEMA = {
    "title": "Problem", "type": "object", "description": "RFC 9457 problem details",
    "properties": {"type": {"type": "string", "format": "uri-reference"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"}},
    "required": ["type", "title", "status"], "additionalProperties": True,
}


class _Framework(DomainError):
    """What Starlette itself refuses (an unknown path, a method not allowed)."""

    type, title, status = "http", "HTTP error", 400
    description = "Refused by the HTTP layer (no such path, method not allowed); `status` says which."


problem_router = APIRouter(tags=["service"])


@problem_router.get("/problems/{name}", summary="What a problem type means", responses={404: {"description": "no such problem type"}})
async def problem_type(name: str) -> dict:
    """Every `type` the window answers with resolves here: its title, status and meaning."""
    for kind in DomainError.catalogue():
        if kind.type == name:
            return {"type": type_uri(kind), "title": kind.title, "status": kind.status, "description": kind.description}
    raise NotFound(f"no problem type {name}")


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> Response:
        return problem_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        body = {"type": type_uri(_Framework), "title": str(exc.detail), "status": exc.status_code}
        return Response(orjson.dumps(body), status_code=exc.status_code, media_type=PROBLEM_JSON,
                        headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", ""), "type": e.get("type")}
            for e in exc.errors()
        ]
        return problem_response(Invalid("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        # Starlette logs the exception and re-raises it to the server; the caller gets the same shape.
        return problem_response(DomainError("an unexpected error stopped this request; the window logged it"))

    app.include_router(problem_router)
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["PROBLEM_JSON", "install", "problem_body", "problem_response", "responses", "type_uri"]
