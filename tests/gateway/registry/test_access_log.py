"""The access log: every regulator read of a registration, with the fields it was shown, listed for the
firm and the operator."""

from __future__ import annotations

from tests.fixtures.registration import METADATA, _feed, _head, _patch, _policy_fields, _register

# ---- access log ---------------------------------------------------------------------------------------


def test_access_log_lists_every_regulator_read(swx, regulators):
    cursors = {r: _head(swx, h) for r, h in regulators.items()}
    firm, _ = _register(swx)
    assert swx.http.get(f"/v1/enterprises/{firm.code}/access-log", headers=firm.auth).json()["entries"] == []
    assert _patch(swx, firm, {"dxpId": "DXPNEW0001"}, swx.operator).status_code == 200  # version 2

    expected = []
    for regulator, headers in regulators.items():
        view = swx.http.get(f"/v1/registry/enterprises/{firm.code}", headers=headers).json()
        expected.append((regulator, 2, "read", sorted(view)))
        view = swx.http.get(f"/v1/registry/enterprises/{firm.code}", params={"version": 1}, headers=headers).json()
        expected.append((regulator, 1, "read", sorted(view)))
    for regulator, headers in regulators.items():
        for change in [c for c in _feed(swx, headers, cursors[regulator])[0] if c["code"] == firm.code]:
            expected.append((regulator, change["version"], "changes", sorted(change["record"])))
    assert len(expected) == 4 * 2 + 4 * 2

    for headers in (firm.auth, swx.operator):
        r = swx.http.get(f"/v1/enterprises/{firm.code}/access-log", headers=headers)
        assert r.status_code == 200, r.text
        entries = r.json()["entries"]
        got = [(e["regulator"], e["version"], e["via"], sorted(e["fields"])) for e in entries]
        assert sorted(got) == sorted(expected)
        assert all(e["at"] for e in entries)
    # fields logged are the regulator's view, never more
    for e in entries:
        assert set(e["fields"]) == _policy_fields(e["regulator"]) | METADATA
    # paging
    page = swx.http.get(f"/v1/enterprises/{firm.code}/access-log", params={"limit": 3}, headers=firm.auth).json()
    rest = swx.http.get(f"/v1/enterprises/{firm.code}/access-log", params={"after": page["next"]}, headers=firm.auth).json()
    assert [e["id"] for e in page["entries"] + rest["entries"]] == [e["id"] for e in entries]
    # regulators do not read the log; a suspended firm still sees it
    assert swx.http.get(f"/v1/enterprises/{firm.code}/access-log", headers=regulators["customs"]).status_code == 403
    assert swx.http.post(f"/v1/enterprises/{firm.code}/suspend", headers=swx.operator).status_code == 200
    assert swx.http.get(f"/v1/enterprises/{firm.code}/access-log", headers=firm.auth).status_code == 200
