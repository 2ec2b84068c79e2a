"""The registration record (CEB.md §7) over HTTP: a firm's API keys rotated and revoked."""

from __future__ import annotations

from tests.fixtures.registration import _register

# ---- keys ---------------------------------------------------------------------------------------------


def _works(swx, key: str) -> bool:
    return swx.http.get("/v1/receipts", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_key_rotation_and_revocation(swx):
    firm, _ = _register(swx)
    r = swx.http.post(f"/v1/enterprises/{firm.code}/keys", headers=firm.auth)
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["apiKey"].startswith("swx_") and second["prefix"] == second["apiKey"][:12]
    assert _works(swx, firm.key) and _works(swx, second["apiKey"])

    r = swx.http.post(f"/v1/enterprises/{firm.code}/keys", json={"revokeOthers": True}, headers=swx.operator)
    assert r.status_code == 201
    third = r.json()
    assert not _works(swx, firm.key) and not _works(swx, second["apiKey"]) and _works(swx, third["apiKey"])

    new_auth = {"Authorization": f"Bearer {third['apiKey']}"}
    keys = swx.http.get(f"/v1/enterprises/{firm.code}/keys", headers=new_auth).json()["keys"]
    assert len(keys) == 3 and [k["revokedAt"] is None for k in keys] == [False, False, True]
    assert keys[2]["id"] == third["id"] and keys[2]["prefix"] == third["prefix"]
    assert all(set(k) == {"id", "prefix", "createdAt", "revokedAt"} for k in keys)  # never the key itself
    assert third["apiKey"] not in swx.http.get(f"/v1/enterprises/{firm.code}/keys", headers=new_auth).text

    fourth = swx.http.post(f"/v1/enterprises/{firm.code}/keys", json={"revokeOthers": False}, headers=new_auth).json()
    assert swx.http.delete(f"/v1/enterprises/{firm.code}/keys/{third['id']}", headers=new_auth).status_code == 204
    assert not _works(swx, third["apiKey"]) and _works(swx, fourth["apiKey"])
    assert swx.http.delete(f"/v1/enterprises/{firm.code}/keys/{third['id']}", headers=swx.operator).status_code == 204
    # another firm's key is not the firm's to revoke
    other, _ = _register(swx)
    other_key = swx.http.get(f"/v1/enterprises/{other.code}/keys", headers=other.auth).json()["keys"][0]["id"]
    four = {"Authorization": f"Bearer {fourth['apiKey']}"}
    assert swx.http.delete(f"/v1/enterprises/{firm.code}/keys/{other_key}", headers=four).status_code == 404
    assert _works(swx, other.key)
