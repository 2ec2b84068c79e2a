"""The registration record (CEB.md §7) over HTTP: versions -- the history, identity and role changes held
pending until approved or rejected, concurrent changes, and each firm seeing only its own record."""

from __future__ import annotations

from schemas.identifiers import make_customs_code, make_uscc
from tests.fixtures.registration import _feed, _get, _head, _patch, _register, _rng, _versions

# ---- versions -----------------------------------------------------------------------------------------


def test_version_history(swx):
    firm, body = _register(swx)
    r = _patch(swx, firm, {"contact": {"name": "李强", "email": "li@example.com"}}, swx.operator)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    r = _patch(swx, firm, {"economicZone": None, "creditRating": "general", "validTo": "2031-06-30"})  # the firm itself
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["version"] == 3 and state["pending"] is None
    assert state["record"]["economicZone"] is None and state["record"]["validTo"] == "2031-06-30"
    assert state["record"]["contact"] == {"name": "李强", "phone": None, "email": "li@example.com"}
    # a change that changes nothing is no version
    assert _patch(swx, firm, {"creditRating": "general"}).json()["version"] == 3

    history = _versions(swx, firm)
    assert [v["version"] for v in history] == [1, 2, 3]
    assert [v["state"] for v in history] == ["superseded", "superseded", "active"]
    assert [v["createdBy"] for v in history] == ["operator", "operator", firm.code]
    assert history[1]["changedFields"] == ["contact"]
    assert history[2]["changedFields"] == ["economicZone", "creditRating", "validTo"]
    # nothing is overwritten: every version keeps its own full record
    assert history[0]["record"]["contact"] == body["contact"] and history[0]["record"]["economicZone"] == body["economicZone"]
    assert history[1]["record"]["economicZone"] == body["economicZone"] and history[1]["record"]["contact"]["name"] == "李强"


def test_pending_identity_change_approved(swx, regulators):
    firm, body = _register(swx)
    cursor = _head(swx, regulators["fx"])
    r = _patch(swx, firm, {"name": "杭州改名国际贸易有限公司"})
    assert r.status_code == 202, r.text
    state = r.json()
    assert state["record"]["name"] == body["name"] and state["version"] == 1  # not in effect yet
    assert state["pending"]["version"] == 2 and state["pending"]["changedFields"] == ["name"]
    assert state["pending"]["record"]["name"] == "杭州改名国际贸易有限公司"
    # one pending change at a time
    assert _patch(swx, firm, {"roles": ["ebp"]}).status_code == 409
    # other fields still take effect at once, beside the pending change
    r = _patch(swx, firm, {"customsOffice": "2902"})
    assert r.status_code == 200 and r.json()["version"] == 3 and r.json()["pending"]["version"] == 2
    # the regulators see nothing of the pending change
    assert [c["version"] for c in _feed(swx, regulators["fx"], cursor)[0] if c["code"] == firm.code] == [3]
    r = swx.http.get(f"/v1/registry/enterprises/{firm.code}", params={"version": 2}, headers=regulators["customs"])
    assert r.status_code == 404
    # only the operator decides
    assert swx.http.post(f"/v1/enterprises/{firm.code}/versions/2/approve", headers=firm.auth).status_code == 403

    r = swx.http.post(f"/v1/enterprises/{firm.code}/versions/2/approve", json={"note": "matches the licence"}, headers=swx.operator)
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["version"] == 2 and state["pending"] is None
    assert state["record"]["name"] == "杭州改名国际贸易有限公司" and state["record"]["customsOffice"] == "2902"
    history = {v["version"]: v for v in _versions(swx, firm)}
    assert history[2]["state"] == "active" and history[2]["note"] == "matches the licence" and history[2]["decidedAt"]
    assert history[3]["state"] == "superseded" and history[1]["state"] == "superseded"
    assert swx.http.post(f"/v1/enterprises/{firm.code}/versions/2/approve", headers=swx.operator).status_code == 409
    # now it is shared, and the name every check reads has changed
    changes = [c for c in _feed(swx, regulators["fx"], cursor)[0] if c["code"] == firm.code]
    assert [(c["version"], c["kind"]) for c in changes] == [(3, "changed"), (2, "changed")]
    assert changes[-1]["record"]["name"] == "杭州改名国际贸易有限公司"
    view = swx.http.get(f"/v1/registry/enterprises/{firm.code}", headers=regulators["fx"]).json()
    assert view["version"] == 2 and view["name"] == "杭州改名国际贸易有限公司"


def test_pending_role_change_rejected(swx, regulators):
    firm, body = _register(swx)
    cursor = _head(swx, regulators["customs"])
    r = _patch(swx, firm, {"roles": ["ebp", "ebc", "pay"], "contact": {"name": "赵六"}})
    assert r.status_code == 202, r.text
    state = r.json()
    # the contact took effect at once as version 2; the roles wait as version 3
    assert state["version"] == 2 and state["record"]["contact"]["name"] == "赵六" and state["record"]["roles"] == ["ebp", "ebc"]
    assert state["pending"]["version"] == 3 and state["pending"]["changedFields"] == ["roles"]
    assert swx.http.post(f"/v1/enterprises/{firm.code}/versions/9/reject", headers=swx.operator).status_code == 404
    r = swx.http.post(f"/v1/enterprises/{firm.code}/versions/3/reject", json={"note": "no payment licence"}, headers=swx.operator)
    assert r.status_code == 200, r.text
    assert r.json()["record"]["roles"] == ["ebp", "ebc"] and r.json()["pending"] is None and r.json()["version"] == 2
    v3 = _versions(swx, firm)[2]
    assert (v3["state"], v3["note"]) == ("rejected", "no payment licence") and v3["record"]["roles"] == ["ebp", "ebc", "pay"]
    assert swx.http.post(f"/v1/enterprises/{firm.code}/versions/3/approve", headers=swx.operator).status_code == 409
    # a rejected version is never shared
    assert swx.http.get(f"/v1/registry/enterprises/{firm.code}", params={"version": 3}, headers=regulators["customs"]).status_code == 404
    for regulator, headers in regulators.items():
        versions = [c["version"] for c in _feed(swx, headers, cursor)[0] if c["code"] == firm.code]
        assert 3 not in versions and 2 in versions, regulator
    # a new identity change may be filed once nothing is pending
    assert _patch(swx, firm, {"uscc": make_uscc(_rng)}).status_code == 202


def test_concurrent_changes_each_get_their_own_version(swx, regulators):
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    firm, _ = _register(swx)
    cursor = _head(swx, regulators["fx"])

    def change(i: int) -> int:
        with httpx.Client(base_url=swx.base_url, timeout=60) as http:
            return http.patch(f"/v1/enterprises/{firm.code}", json={"contact": {"name": f"联系人{i}"}}, headers=firm.auth).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(change, range(12))) == [200] * 12
    history = _versions(swx, firm)
    assert [v["version"] for v in history] == list(range(1, 14))
    assert [v["state"] for v in history] == ["superseded"] * 12 + ["active"]
    assert _get(swx, firm)["version"] == 13
    shared = [c["version"] for c in _feed(swx, regulators["fx"], cursor)[0] if c["code"] == firm.code]
    assert shared == list(range(2, 14))


def test_operator_changes_identity_at_once(swx):
    firm, _ = _register(swx)
    r = _patch(swx, firm, {"name": "运营方更名有限公司", "roles": ["ebp", "ebc", "logistics"]}, swx.operator)
    assert r.status_code == 200, r.text
    assert r.json()["record"]["name"] == "运营方更名有限公司" and r.json()["pending"] is None
    assert r.json()["record"]["roles"] == ["ebp", "ebc", "logistics"]


def test_registered_code_cannot_change_and_codes_stay_unique(swx):
    firm, body = _register(swx)
    other, other_body = _register(swx)
    r = _patch(swx, firm, {"customsCode": make_customs_code(_rng)}, swx.operator)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "customsCode"
    r = _patch(swx, firm, {"uscc": other_body["uscc"]}, swx.operator)
    assert r.status_code == 409 and r.json()["field"] == "uscc"
    assert _patch(swx, firm, {"uscc": other_body["uscc"]}).status_code == 409  # not even pending


def test_firms_see_only_their_own_record(swx, regulators):
    firm, _ = _register(swx)
    other, other_body = _register(swx)
    for path in ("", "/versions", "/keys", "/access-log"):
        assert swx.http.get(f"/v1/enterprises/{other.code}{path}", headers=firm.auth).status_code == 404
    assert swx.http.get(f"/v1/enterprises/{other_body['uscc']}", headers=firm.auth).status_code == 404
    assert _patch(swx, other, {"contact": {"name": "冒名"}}, firm.auth).status_code == 404
    assert swx.http.post(f"/v1/enterprises/{other.code}/keys", headers=firm.auth).status_code == 404
    assert swx.http.get("/v1/enterprises/0000000000", headers=swx.operator).status_code == 404
    # regulators read through the registry, not here
    assert swx.http.get(f"/v1/enterprises/{other.code}", headers=regulators["customs"]).status_code == 403
