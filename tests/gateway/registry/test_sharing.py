"""The registry's regulator views: regulator keys, each regulator seeing only the fields its policy
gives it, the changes feed (never a pending or rejected version), and unknown enterprises."""

from __future__ import annotations

import pytest

from tests.fixtures.registration import FIELDS, METADATA, REGULATORS, _feed, _get, _head, _patch, _policy_fields, _register


def test_regulator_keys(swx, filer):
    assert swx.http.post("/v1/regulators/customs/keys", headers=filer.auth).status_code == 403
    assert swx.http.post("/v1/regulators/police/keys", headers=swx.operator).status_code == 404
    r = swx.http.post("/v1/regulators/inspection/keys", headers=swx.operator)
    assert r.status_code == 201 and r.json()["apiKey"].startswith("swx_")
    auth = {"Authorization": f"Bearer {r.json()['apiKey']}"}
    assert swx.http.get("/v1/registry/changes", params={"limit": 1}, headers=auth).status_code == 200
    # enterprises and the operator do not read the registry's regulator views
    assert swx.http.get("/v1/registry/changes", headers=filer.auth).status_code == 403
    assert swx.http.get(f"/v1/registry/enterprises/{filer.code}", headers=swx.operator).status_code == 403
    assert swx.http.delete(f"/v1/regulators/inspection/keys/{r.json()['id']}", headers=swx.operator).status_code == 204
    assert swx.http.get("/v1/registry/changes", headers=auth).status_code == 401


# ---- sharing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("regulator", REGULATORS)
def test_each_regulator_sees_only_its_policy_fields(swx, regulators, regulator):
    allowed = _policy_fields(regulator)
    headers = regulators[regulator]
    cursor = _head(swx, headers)
    firm, body = _register(swx)
    assert _patch(swx, firm, {"contact": {"name": "新联系人", "email": "new@example.com"}, "economicZone": "新区"}, swx.operator).status_code == 200
    record = _get(swx, firm)["record"]

    views = []
    for code in (firm.code, body["uscc"]):
        r = swx.http.get(f"/v1/registry/enterprises/{code}", headers=headers)
        assert r.status_code == 200, r.text
        views.append(r.json())
    r = swx.http.get(f"/v1/registry/enterprises/{firm.code}", params={"version": 1}, headers=headers)
    assert r.status_code == 200
    views.append(r.json())
    changes = [c for c in _feed(swx, headers, cursor)[0] if c["code"] == firm.code]
    assert [(c["kind"], c["version"]) for c in changes] == [("registered", 1), ("changed", 2)]
    views += [c["record"] for c in changes]

    for view in views:
        assert set(view) == allowed | METADATA, set(view) ^ (allowed | METADATA)
        assert view["code"] == firm.code and view["status"] == "active"
    for field in allowed:
        assert views[0][field] == record[field], field
    assert views[2]["version"] == 1 and views[0]["version"] == 2
    if "contact" in allowed:
        assert views[2]["contact"] == body["contact"] and views[0]["contact"]["name"] == "新联系人"
    # what the regulator is told about its view matches the file
    policy = swx.http.get("/v1/registry/policy", headers=headers).json()
    assert set(policy["regulators"]) == {regulator} and set(policy["regulators"][regulator]) == allowed


def test_policy_gives_certificates_to_customs_only():
    assert "certificates" in _policy_fields("customs") and _policy_fields("customs") == set(FIELDS)
    for regulator in ("inspection", "tax", "fx"):
        assert "certificates" not in _policy_fields(regulator)
        assert {"customsCode", "uscc", "name", "roles", "validFrom", "validTo"} <= _policy_fields(regulator)
    assert "contact" in _policy_fields("tax") and "contact" not in _policy_fields("fx")


def test_changes_feed_never_holds_pending_or_rejected_versions(swx, regulators):
    cursors = {r: _head(swx, h) for r, h in regulators.items()}
    firm, _ = _register(swx)
    assert _patch(swx, firm, {"name": "待批改名一有限公司"}).status_code == 202  # v2 pending
    assert swx.http.post(f"/v1/enterprises/{firm.code}/versions/2/reject", headers=swx.operator).status_code == 200
    assert _patch(swx, firm, {"roles": ["ebc"]}).status_code == 202  # v3 pending
    for regulator, headers in regulators.items():
        changes = [c for c in _feed(swx, headers, cursors[regulator])[0] if c["code"] == firm.code]
        assert [c["version"] for c in changes] == [1], regulator
    assert swx.http.post(f"/v1/enterprises/{firm.code}/versions/3/approve", headers=swx.operator).status_code == 200
    for regulator, headers in regulators.items():
        changes = [c for c in _feed(swx, headers, cursors[regulator])[0] if c["code"] == firm.code]
        assert [(c["version"], c["kind"]) for c in changes] == [(1, "registered"), (3, "changed")], regulator
        assert changes[1]["record"]["roles"] == ["ebc"] and changes[1]["record"]["name"] != "待批改名一有限公司"
    # the feed pages with its cursor
    items, end = _feed(swx, regulators["fx"], cursors["fx"])
    r = swx.http.get("/v1/registry/changes", params={"after": cursors["fx"], "limit": 1}, headers=regulators["fx"]).json()
    assert len(r["changes"]) == 1 and r["next"] == r["changes"][0]["id"] == items[0]["id"]
    assert swx.http.get("/v1/registry/changes", params={"after": end}, headers=regulators["fx"]).json() == {"changes": [], "next": end}


def test_regulator_reads_unknown_enterprise(swx, regulators):
    assert swx.http.get("/v1/registry/enterprises/0000000000", headers=regulators["fx"]).status_code == 404
    firm, _ = _register(swx)
    assert swx.http.get(f"/v1/registry/enterprises/{firm.code}", params={"version": 7}, headers=regulators["fx"]).status_code == 404
