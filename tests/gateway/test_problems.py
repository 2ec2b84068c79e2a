"""Errors at the edge: every refusal is an RFC 9457 problem whose type resolves on the window itself."""

from __future__ import annotations

from gateway.errors import DomainError
from gateway.problems import TYPE_BASE


def _catalogue() -> list[type[DomainError]]:
    import gateway.app  # noqa: F401 - every domain's errors module is imported with the app

    return DomainError.catalogue()


def test_every_error_type_is_unique_and_described():
    kinds = _catalogue()
    types = [k.type for k in kinds if not k.__name__.startswith("_")]
    assert len(types) == len(set(types)), sorted(t for t in types if types.count(t) > 1)
    for k in kinds:
        assert 400 <= k.status < 600 and k.title and k.description, k


def test_every_type_resolves_to_its_meaning(swx):
    for kind in _catalogue():
        r = swx.http.get(TYPE_BASE + kind.type)
        assert r.status_code == 200, (kind, r.text)
        assert r.json() == {"type": TYPE_BASE + kind.type, "title": kind.title, "status": kind.status,
                            "description": kind.description}
    r = swx.http.get(TYPE_BASE + "no-such-problem")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


def test_a_refusal_names_its_type_and_the_openapi_lists_it(swx):
    r = swx.http.get("/v1/enterprises/3301960ZZZ", headers=swx.operator)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == TYPE_BASE + "enterprise-not-found" and body["status"] == 404 and "3301960ZZZ" in body["detail"]
    assert swx.http.get(body["type"]).json()["status"] == 404
    r = swx.http.get("/v1/enterprises")  # no key at all
    assert r.status_code in (401, 405)
    unauthorized = swx.http.get("/v1/receipts")
    assert unauthorized.status_code == 401 and unauthorized.json()["type"] == TYPE_BASE + "unauthorized"
    assert unauthorized.headers["www-authenticate"].startswith("Bearer")
    spec = swx.http.get("/openapi.json").json()
    get_enterprise = spec["paths"]["/v1/enterprises/{code}"]["get"]["responses"]
    assert "enterprise-not-found" in get_enterprise["404"]["description"]
    assert "unauthorized" in get_enterprise["401"]["description"]
    assert spec["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status"]


def test_an_unexpected_failure_is_a_problem_too():
    import httpx
    from fastapi import FastAPI

    from gateway import problems

    app = FastAPI()
    problems.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://swx") as client:
            return await client.get("/boom")

    import asyncio

    r = asyncio.run(call())
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == TYPE_BASE + "error" and "a bug" not in r.text  # no internals leak
