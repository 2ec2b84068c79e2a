"""Callers: registration by the operator, keys, and each firm seeing only its own filings and receipts."""

from __future__ import annotations

import pytest

from tests.fixtures.parties import party_of


@pytest.fixture(scope="module")
def alice(swx):
    return swx.register(["ebp", "ebc"])


@pytest.fixture(scope="module")
def bob(swx):
    return swx.register(["ebp", "ebc"])


def _file_order(swx, builder, firm, **overrides):
    r = swx.file(firm, builder.message("311", [builder.order(builder.parties(), **overrides)], sender=party_of(firm)))
    assert r.status_code in (201, 422), r.text
    return r


def test_firm_cannot_file_under_another_code(swx, builder, alice, bob):
    body = builder.message("311", [builder.order(builder.parties())], sender=party_of(bob))
    r = swx.file(alice, body)
    assert r.status_code == 403
    assert bob.code in r.json()["detail"] and "copCode" in r.json()["errors"][0]["path"]
    assert swx.file(bob, body).status_code == 201  # nothing of bob's guid was taken by alice's attempt


def test_operator_does_not_file(swx, builder, alice):
    body = builder.message("311", [builder.order(builder.parties())], sender=party_of(alice))
    r = swx.http.post("/v1/filings", content=body, headers={**swx.operator, "Content-Type": "application/xml"})
    assert r.status_code == 403


def test_filings_of_others_are_404(swx, builder, alice, bob):
    accepted = _file_order(swx, builder, alice).json()["guid"]
    rejected = _file_order(swx, builder, alice, acturalPaid="0.10000").json()["guid"]
    for guid in (accepted, rejected):
        assert swx.http.get(f"/v1/filings/{guid}", headers=alice.auth).status_code == 200
        r = swx.http.get(f"/v1/filings/{guid}", headers=bob.auth)
        assert r.status_code == 404 and guid in r.json()["detail"]
        assert swx.http.get(f"/v1/filings/{guid}", headers=swx.operator).status_code == 200


def test_receipt_feed_holds_only_own_receipts(swx, builder, alice, bob):
    _file_order(swx, builder, alice)
    _file_order(swx, builder, bob)
    for firm in (alice, bob):
        after = 0
        while True:
            page = swx.http.get("/v1/receipts", headers=firm.auth, params={"after": after, "limit": 500}).json()
            if not page["receipts"]:
                break
            assert {x["addressee"] for x in page["receipts"]} == {firm.code}
            after = page["next"]
    everyone, after = [], 0
    while page := swx.http.get("/v1/receipts", headers=swx.operator, params={"after": after, "limit": 500}).json()["receipts"]:
        everyone += page
        after = page[-1]["id"]
    assert {alice.code, bob.code} <= {x["addressee"] for x in everyone}


def test_other_firm_cannot_change_my_document(swx, builder, alice, bob):
    parties = builder.parties()
    order = builder.order(parties)
    assert swx.file(alice, builder.message("311", [order], sender=party_of(alice))).status_code == 201
    change = builder.order(parties, order_no=order.head["orderNo"], appType="2")
    # bob names the same platform and order number: to bob the key does not exist
    change.head["ebpCode"] = order.head["ebpCode"]
    r = swx.file(bob, builder.message("311", [change], sender=party_of(bob)))
    assert r.status_code == 422
    assert r.json()["errors"][0]["code"] == "-301009"


def test_registration_needs_the_operator(swx, alice):
    body = {"code": "3301960AB1", "name": "x", "roles": ["ebp"]}
    assert swx.http.post("/v1/enterprises", json=body, headers=alice.auth).status_code == 403


@pytest.mark.parametrize(
    "body, field",
    [
        ({"code": "91110000802100433A", "name": "n", "roles": ["ebp"]}, "code"),  # USCC check char wrong
        ({"code": "12345", "name": "n", "roles": ["ebp"]}, "code"),
        ({"code": "3301960AB1", "name": "", "roles": ["ebp"]}, "name"),
        ({"code": "3301960AB1", "name": "n", "roles": ["smuggler"]}, "roles"),
        ({"code": "3301960AB1", "name": "n", "roles": []}, "roles"),
        ({"code": "3301960AB1", "name": "n", "roles": ["ebp"], "dxpId": "D" * 31}, "dxpId"),
    ],
)
def test_registration_fields_are_checked(swx, body, field):
    r = swx.http.post("/v1/enterprises", json=body, headers=swx.operator)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == field


def test_registering_a_code_twice_is_409(swx, alice):
    r = swx.http.post("/v1/enterprises", json={"code": alice.code, "name": "again", "roles": ["ebp"]}, headers=swx.operator)
    assert r.status_code == 409


def test_keys_are_stored_hashed(swx, settings, alice):
    import asyncio

    from sqlalchemy import select

    from gateway.db import make_engine, make_sessionmaker
    from gateway.models import ApiKey

    async def stored() -> list[str]:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as session:
                return list((await session.execute(select(ApiKey.key_hash).where(ApiKey.enterprise_code == alice.code))).scalars())
        finally:
            await engine.dispose()

    hashes = asyncio.run(stored())
    assert hashes and alice.key not in hashes and all(len(h) == 64 for h in hashes)
