"""The registration record (CEB.md §7): registration, versions, lifecycle, keys, sharing, access log.

Every test talks to the real server over HTTP; the sharing-policy tests read the policy file
themselves and compare each regulator's view with it.
"""

from __future__ import annotations

import datetime as dt
import random
import tomllib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from schemas.identifiers import make_customs_code, make_uscc
from tests.fixtures.client import Firm
from tests.fixtures.parties import party_of
from tests.fixtures.paths import ROOT

REGULATORS = ("customs", "inspection", "tax", "fx")
FIELDS = (
    "customsCode", "uscc", "name", "customsOffice", "regionCode", "economicZone", "businessCategories",
    "roles", "creditRating", "validFrom", "validTo", "contact", "dxpId", "certificates",
)
METADATA = {"code", "version", "status"}
POLICY_FILE = ROOT / "gateway" / "registry" / "sharing.toml"
# The shorthands the policy file documents in its header.
SHORTHANDS = {"identity": {"customsCode", "uscc", "name"}, "validity": {"validFrom", "validTo"}, "*": set(FIELDS)}

_rng = random.Random()


def _policy_fields(regulator: str) -> set[str]:
    """The record fields the default policy file gives ``regulator``, read straight from the file."""
    with POLICY_FILE.open("rb") as f:
        names = tomllib.load(f)[regulator]["fields"]
    out: set[str] = set()
    for name in names:
        out |= SHORTHANDS.get(name, {name})
    return out - METADATA


def _certificate(cn: str, private: bool = False) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "swx test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256())
    )
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _full_body(**overrides) -> dict:
    customs, uscc = make_customs_code(_rng, "2901"), make_uscc(_rng, "330106")
    body = {
        "customsCode": customs, "uscc": uscc, "name": f"杭州{customs[-6:]}跨境电子商务有限公司",
        "customsOffice": "2901", "regionCode": "330106", "economicZone": "中国(杭州)跨境电子商务综合试验区",
        "businessCategories": ["进出口货物收发货人", "跨境电商"], "roles": ["ebp", "ebc"], "creditRating": "advanced",
        "validFrom": "2024-01-01", "validTo": "2030-12-31",
        "contact": {"name": "王芳", "phone": "+86 571 8888 0000", "email": "customs@example.com"},
        "dxpId": f"DXPENT{customs}", "certificates": [_certificate(customs)],
    }
    body.update(overrides)
    return body


def _register(swx, **overrides) -> tuple[Firm, dict]:
    body = _full_body(**overrides)
    r = swx.http.post("/v1/enterprises", json=body, headers=swx.operator)
    assert r.status_code == 201, r.text
    out = r.json()
    return Firm(out["code"], body["name"], out["apiKey"], body.get("dxpId", ""), body["roles"]), body


def _get(swx, firm: Firm, headers=None) -> dict:
    r = swx.http.get(f"/v1/enterprises/{firm.code}", headers=headers or firm.auth)
    assert r.status_code == 200, r.text
    return r.json()


def _patch(swx, firm: Firm, change: dict, headers=None):
    return swx.http.patch(f"/v1/enterprises/{firm.code}", json=change, headers=headers or firm.auth)


def _versions(swx, firm: Firm) -> list[dict]:
    r = swx.http.get(f"/v1/enterprises/{firm.code}/versions", headers=swx.operator)
    assert r.status_code == 200, r.text
    return r.json()["versions"]


@pytest.fixture(scope="module")
def regulators(swx) -> dict[str, dict[str, str]]:
    """Each regulator's Authorization header, from a key the operator issued."""
    out = {}
    for name in REGULATORS:
        r = swx.http.post(f"/v1/regulators/{name}/keys", headers=swx.operator)
        assert r.status_code == 201, r.text
        out[name] = {"Authorization": f"Bearer {r.json()['apiKey']}"}
    return out


def _feed(swx, headers, after: int = 0) -> tuple[list[dict], int]:
    """Everything in a regulator's changes feed after ``after``, and the cursor at its end."""
    items: list[dict] = []
    while True:
        r = swx.http.get("/v1/registry/changes", params={"after": after, "limit": 500}, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["changes"]
        if not page["changes"]:
            return items, page["next"]
        after = page["next"]


def _head(swx, headers) -> int:
    return _feed(swx, headers)[1]


# ---- registration -------------------------------------------------------------------------------------


def test_full_registration(swx):
    firm, body = _register(swx)
    assert firm.code == body["customsCode"]  # registered under its customs code when it has one
    state = _get(swx, firm)
    assert state["status"] == "active" and state["version"] == 1 and state["pending"] is None
    record = state["record"]
    for field in FIELDS:
        if field != "certificates":
            assert record[field] == body[field], field
    [cert] = record["certificates"]
    parsed = x509.load_pem_x509_certificate(body["certificates"][0].encode())
    assert cert["pem"].strip() == body["certificates"][0].strip()
    assert cert["serial"] == format(parsed.serial_number, "X")
    assert cert["subject"] == parsed.subject.rfc4514_string()
    assert dt.datetime.fromisoformat(cert["notAfter"]) == parsed.not_valid_after_utc
    # the operator reads it too, and so does the firm by its USCC
    assert _get(swx, firm, swx.operator)["record"] == record
    assert swx.http.get(f"/v1/enterprises/{body['uscc']}", headers=firm.auth).json()["record"] == record
    [v1] = _versions(swx, firm)
    assert (v1["version"], v1["state"], v1["kind"], v1["createdBy"]) == (1, "active", "registered", "operator")
    # its key works
    assert swx.http.get("/v1/receipts", headers=firm.auth).status_code == 200


def test_minimal_registration_keeps_working(swx):
    customs = make_customs_code(_rng)
    r = swx.http.post("/v1/enterprises", headers=swx.operator,
                      json={"code": customs, "name": "最小备案有限公司", "roles": ["ebc", "ebp", "ebc"], "dxpId": "DXPMIN1"})
    assert r.status_code == 201, r.text
    assert r.json()["code"] == customs and r.json()["version"] == 1 and r.json()["status"] == "active"
    record = swx.http.get(f"/v1/enterprises/{customs}", headers=swx.operator).json()["record"]
    assert record["customsCode"] == customs and record["uscc"] is None
    assert record["roles"] == ["ebp", "ebc"] and record["creditRating"] == "general" and record["dxpId"] == "DXPMIN1"

    uscc = make_uscc(_rng)
    r = swx.http.post("/v1/enterprises", headers=swx.operator, json={"code": uscc, "name": "统一代码有限公司", "roles": ["pay"]})
    assert r.status_code == 201, r.text
    record = swx.http.get(f"/v1/enterprises/{uscc}", headers=swx.operator).json()["record"]
    assert r.json()["code"] == uscc and record["uscc"] == uscc and record["customsCode"] is None


def test_uscc_only_registers_under_uscc(swx):
    firm, body = _register(swx, customsCode=None)
    assert firm.code == body["uscc"]


def test_only_the_operator_registers(swx, filer):
    assert swx.http.post("/v1/enterprises", json=_full_body(), headers=filer.auth).status_code == 403
    assert swx.http.post("/v1/enterprises", json=_full_body()).status_code == 401


def test_codes_are_unique(swx):
    _, body = _register(swx)
    for clash in ({"customsCode": body["customsCode"]}, {"uscc": body["uscc"]}):
        r = swx.http.post("/v1/enterprises", json=_full_body(**clash), headers=swx.operator)
        assert r.status_code == 409, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["field"] == next(iter(clash))
    # the minimal form clashes too
    r = swx.http.post("/v1/enterprises", headers=swx.operator, json={"code": body["uscc"], "name": "重复有限公司", "roles": ["ebp"]})
    assert r.status_code == 409


MALFORMED = [
    # field sent, its value, the field the error names, words of the rule
    ("customsCode", "33019", "customsCode", "10 characters"),
    ("customsCode", "3301960ab1", "customsCode", "capital letters"),
    ("uscc", "91330106MA2KLM8Q4A", "uscc", "GB 32100"),
    ("uscc", "9133010", "uscc", "18 characters"),
    ("name", "", "name", "at least 1"),
    ("name", "   ", "name", "blank"),
    ("name", "名" * 101, "name", "at most 100"),
    ("customsOffice", "290", "customsOffice", "4-digit"),
    ("customsOffice", "29A1", "customsOffice", "4-digit"),
    ("regionCode", "3301", "regionCode", "6-digit"),
    ("economicZone", "区" * 101, "economicZone", "at most 100"),
    ("businessCategories", ["跨境电商", ""], "businessCategories.1", "at least 1"),
    ("businessCategories", "跨境电商", "businessCategories", "list"),
    ("roles", [], "roles", "at least 1"),
    ("roles", ["ebp", "seller"], "roles", "unknown role"),
    ("creditRating", "excellent", "creditRating", "'advanced', 'general' or 'dishonest'"),
    ("validFrom", "2025-13-01", "validFrom", "calendar"),
    ("validFrom", "01/01/2025", "validFrom", "YYYY-MM-DD"),
    ("validTo", "2023-12-31", "validTo", "before validFrom"),
    ("contact", {"phone": "0571 8888 0000"}, "contact.name", "required"),
    ("contact", {"name": "王芳", "phone": "call me"}, "contact.phone", "digits"),
    ("contact", {"name": "王芳", "email": "not-an-address"}, "contact.email", "name@domain"),
    ("contact", {"name": "王芳", "fax": "0571"}, "contact.fax", "not permitted"),
    ("dxpId", "D" * 31, "dxpId", "1 to 30"),
    ("dxpId", "DXP ENT", "dxpId", "letters, digits"),
    ("certificates", ["not a certificate"], "certificates.0", "PEM"),
    ("certificates", "PRIVATE", "certificates.0", "private key"),
    ("certificates", "BROKEN", "certificates.0", "X.509"),
    ("fax", "0571", "fax", "not permitted"),
]


@pytest.mark.parametrize(("field", "value", "named", "rule"), MALFORMED, ids=[f"{m[0]}-{i}" for i, m in enumerate(MALFORMED)])
def test_each_malformed_field_is_named(swx, field, value, named, rule):
    if value == "PRIVATE":
        value = [_certificate("X", private=True)]
    elif value == "BROKEN":
        good = _certificate("X").splitlines()
        value = ["\n".join([good[0], good[1][:20] + "A" * 40, *good[2:]])]
    r = swx.http.post("/v1/enterprises", json=_full_body(**{field: value}), headers=swx.operator)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert named in errors, errors
    assert rule in errors[named], errors[named]


@pytest.mark.parametrize(("body", "named"), [
    ({"name": "无代码有限公司", "roles": ["ebp"]}, "code"),
    ({"code": "12345", "name": "坏代码有限公司", "roles": ["ebp"]}, "code"),
    ({"code": "3301960AB9", "customsCode": "3301960AB8", "name": "两个代码有限公司", "roles": ["ebp"]}, "code"),
    ({"code": "3301960AB9", "roles": ["ebp"]}, "name"),
    ({"code": "3301960AB9", "name": "无角色有限公司"}, "roles"),
])
def test_codes_name_and_roles_are_required(swx, body, named):
    r = swx.http.post("/v1/enterprises", json=body, headers=swx.operator)
    assert r.status_code == 422, r.text
    assert named in {e["field"] for e in r.json()["errors"]}


def test_malformed_change_is_named(swx):
    firm, _ = _register(swx)
    for change, named in (({"regionCode": "33"}, "regionCode"), ({"name": None}, "name"), ({"roles": None}, "roles"),
                          ({"validTo": "2000-01-01"}, "validTo"), ({"customsCode": None, "uscc": None}, "customsCode"),
                          ({"code": "3301960AB1"}, "code")):
        r = _patch(swx, firm, change, swx.operator)
        assert r.status_code == 422, (change, r.text)
        assert named in {e["field"] for e in r.json()["errors"]}, (change, r.json())
    assert len(_versions(swx, firm)) == 1


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


# ---- the sharing policy file and the OpenAPI document ------------------------------------------------


def test_policy_file_is_checked(tmp_path, monkeypatch):
    from gateway.registry.policy import PolicyError, load_policy

    default = load_policy(POLICY_FILE)
    for regulator in REGULATORS:
        assert set(default.fields_for(regulator)) == _policy_fields(regulator)
    cases = {
        '[customs]\nfields = ["name", "faxNumber"]\n': "faxNumber",
        '[police]\nfields = ["name"]\n': "police",
        '[fx]\nfields = "name"\n': "fields",
        '[fx]\nfield = ["name"]\n': "field",
        '[fx\n': "TOML",
    }
    for text, words in cases.items():
        path = tmp_path / "policy.toml"
        path.write_text(text)
        with pytest.raises(PolicyError, match=words):
            load_policy(path)
    path = tmp_path / "fx-only.toml"
    path.write_text('[fx]\nfields = ["identity"]\n')
    monkeypatch.setenv("SWX_SHARING_POLICY", str(path))
    policy = load_policy()
    assert policy.regulators == ("fx",) and policy.fields_for("fx") == ("customsCode", "uscc", "name")
    assert policy.view("customs", {}, code="X", version=1, status="active") is None
    monkeypatch.setenv("SWX_SHARING_POLICY", str(tmp_path / "missing.toml"))
    with pytest.raises(PolicyError, match="no such file"):
        load_policy()


def test_a_bad_policy_stops_start_up(tmp_path, monkeypatch):
    from gateway.app import create_app
    from gateway.config import Settings
    from gateway.registry.policy import PolicyError

    path = tmp_path / "bad.toml"
    path.write_text('[tax]\nfields = ["bankAccount"]\n')
    monkeypatch.setenv("SWX_SHARING_POLICY", str(path))
    with pytest.raises(PolicyError, match="bankAccount"):
        create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", operator_token="x"))


def test_openapi_shows_examples(swx):
    doc = swx.http.get("/openapi.json").json()
    post = doc["paths"]["/v1/enterprises"]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    assert {"full", "minimal"} <= set(examples) and examples["full"]["value"]["certificates"]
    patch = doc["paths"]["/v1/enterprises/{code}"]["patch"]["requestBody"]["content"]["application/json"]["examples"]
    assert "name" in patch
    for path in ("/v1/registry/enterprises/{code}", "/v1/registry/changes", "/v1/enterprises/{code}/access-log"):
        assert doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["example"], path
    assert doc["paths"]["/v1/enterprises/{code}/keys"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    for name in ("EnterpriseOut", "VersionsOut", "KeysOut", "EnterpriseCreated"):
        assert doc["components"]["schemas"][name].get("examples"), name
