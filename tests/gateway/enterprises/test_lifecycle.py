"""The registration record (CEB.md §7) over HTTP: suspension, reinstatement and cancellation block filing
and reach the regulators."""

from __future__ import annotations

from tests.fixtures.parties import party_of
from tests.fixtures.registration import _feed, _get, _head, _patch, _register, _versions

# ---- lifecycle ----------------------------------------------------------------------------------------


def test_suspend_and_cancel_block_filing(swx, builder):
    firm, _ = _register(swx)
    body = builder.message("311", [builder.order(builder.parties())], sender=party_of(firm))
    assert swx.http.post(f"/v1/enterprises/{firm.code}/suspend", headers=firm.auth).status_code == 403  # operator only
    r = swx.http.post(f"/v1/enterprises/{firm.code}/suspend", json={"note": "audit"}, headers=swx.operator)
    assert r.status_code == 200 and r.json()["status"] == "suspended", r.text
    assert swx.file(firm, body).status_code == 403
    assert _patch(swx, firm, {"contact": {"name": "停用期间"}}).status_code == 403
    assert swx.http.post(f"/v1/enterprises/{firm.code}/keys", headers=firm.auth).status_code == 403
    assert _get(swx, firm)["status"] == "suspended"  # it can still read its record
    assert swx.http.post(f"/v1/enterprises/{firm.code}/suspend", headers=swx.operator).status_code == 409

    r = swx.http.post(f"/v1/enterprises/{firm.code}/reinstate", headers=swx.operator)
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert swx.file(firm, body).status_code == 201

    assert _patch(swx, firm, {"name": "注销前改名有限公司"}).status_code == 202
    r = swx.http.post(f"/v1/enterprises/{firm.code}/cancel", json={}, headers=swx.operator)
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["pending"] is None
    body2 = builder.message("311", [builder.order(builder.parties())], sender=party_of(firm))
    assert swx.file(firm, body2).status_code == 403
    # cancelling is final
    assert swx.http.post(f"/v1/enterprises/{firm.code}/reinstate", headers=swx.operator).status_code == 409
    assert _patch(swx, firm, {"contact": {"name": "注销后"}}, swx.operator).status_code == 409

    history = _versions(swx, firm)
    assert [(v["kind"], v["status"], v["state"]) for v in history] == [
        ("registered", "active", "superseded"), ("suspended", "suspended", "superseded"),
        ("reinstated", "active", "superseded"), ("changed", "active", "rejected"), ("cancelled", "cancelled", "active"),
    ]
    assert history[1]["note"] == "audit" and history[1]["changedFields"] == ["status"]
    assert history[4]["record"] == history[0]["record"]


def test_lifecycle_is_shared(swx, regulators):
    firm, _ = _register(swx)
    cursor = _head(swx, regulators["tax"])
    for action in ("suspend", "reinstate", "cancel"):
        assert swx.http.post(f"/v1/enterprises/{firm.code}/{action}", headers=swx.operator).status_code == 200
    changes = [c for c in _feed(swx, regulators["tax"], cursor)[0] if c["code"] == firm.code]
    assert [(c["kind"], c["version"], c["record"]["status"]) for c in changes] == [
        ("suspended", 2, "suspended"), ("reinstated", 3, "active"), ("cancelled", 4, "cancelled")]
