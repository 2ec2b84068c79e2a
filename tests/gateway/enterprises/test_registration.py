"""The registration record (CEB.md §7) over HTTP: registration by the operator, full or minimal, unique
codes, and every malformed field named."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from schemas.identifiers import make_customs_code, make_uscc
from tests.fixtures.registration import FIELDS, _certificate, _full_body, _get, _patch, _register, _rng, _versions

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
