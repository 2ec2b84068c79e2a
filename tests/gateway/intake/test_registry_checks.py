"""Registration used throughout: every code a filing names is checked against the registry, and the
enterprises a document names — and only they — may read it."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.builder import Parties, Party
from schemas.identifiers import make_customs_code
from tests.fixtures.parties import party_of

ROLE_OF = {"ebpCode": "ebp", "ebcCode": "ebc", "payCode": "pay", "logisticsCode": "logistics", "agentCode": "agent",
           "operatorCode": "operator", "areaCode": "area"}
# (message code, document maker, the Parties attribute behind the field, field)
CASES = [
    ("311", "order", "ebp", "ebpCode"),
    ("311", "order", "ebc", "ebcCode"),
    ("311", "order", "pay", "payCode"),
    ("411", "payment", "pay", "payCode"),
    ("411", "payment", "ebp", "ebpCode"),
    ("511", "waybill", "logistics", "logisticsCode"),
    ("621", "inventory", "agent", "agentCode"),
    ("621", "inventory", "logistics", "logisticsCode"),
    ("621", "inventory", "ebc", "ebcCode"),
    ("711", "delivery", "operator", "operatorCode"),
]


def _doc(builder, parties, kind, field=None):
    """A document of ``kind`` naming ``field`` (an order names its payment firm only most of the time)."""
    while True:
        decl = builder.declaration(parties)
        doc = builder.delivery([decl["waybill"]], parties) if kind == "delivery" else decl[kind]
        if field is None or doc.head.get(field):
            return doc


def _with_party(parties: Parties, attr: str, party: Party) -> Parties:
    return Parties(**{**parties.__dict__, attr: party})


def _errors(r):
    assert r.status_code == 422, r.text
    return r.json()["errors"]


@pytest.mark.parametrize("code, kind, attr, field", CASES)
def test_unknown_code_is_10102(swx, filer, builder, code, kind, attr, field):
    parties = builder.parties()
    stranger = Party(make_customs_code(builder.rng, "3100"), "未备案贸易有限公司", "DXPENT0000000001")
    doc = _doc(builder, _with_party(parties, attr, stranger), kind, field)
    errors = _errors(swx.file(filer, builder.message(code, [doc], sender=party_of(filer))))
    hit = [e for e in errors if e["path"].endswith(f"ceb:{field}")]
    assert hit and hit[0]["code"] == "-10102" and "not a registered enterprise" in hit[0]["message"]


@pytest.mark.parametrize("code, kind, attr, field", CASES)
def test_code_without_the_role_is_10101(swx, filer, builder, code, kind, attr, field):
    parties = builder.parties()
    other_role = "ebp" if ROLE_OF[field] != "ebp" else "pay"
    firm = swx.register([other_role])
    doc = _doc(builder, _with_party(parties, attr, Party(firm.code, firm.name, firm.dxp_id)), kind, field)
    errors = _errors(swx.file(filer, builder.message(code, [doc], sender=party_of(filer))))
    hit = [e for e in errors if e["path"].endswith(f"ceb:{field}")]
    assert hit and hit[0]["code"] == "-10101", errors


def test_all_roles_pass(swx, filer, builder):
    parties = builder.parties()
    decl = builder.declaration(parties)
    for code, kind in (("311", "order"), ("411", "payment"), ("511", "waybill"), ("621", "inventory")):
        r = swx.file(filer, builder.message(code, [decl[kind]], sender=party_of(filer)))
        assert r.status_code == 201, r.text


def test_guarantor_may_be_the_seller(swx, filer, builder):
    parties = builder.parties()
    decl = builder.declaration(parties)
    inventory = builder.inventory(decl["order"], decl["waybill"], parties, assureCode=parties.ebc.code)
    assert swx.file(filer, builder.message("621", [inventory], sender=party_of(filer))).status_code == 201
    outsider = swx.register(["logistics"])
    inventory = builder.inventory(decl["order"], decl["waybill"], parties, assureCode=outsider.code)
    errors = _errors(swx.file(filer, builder.message("621", [inventory], sender=party_of(filer))))
    assert [e["code"] for e in errors if e["path"].endswith("ceb:assureCode")] == ["-10101"]


def test_registered_name_must_match(swx, filer, builder):
    parties = builder.parties()
    order = builder.order(parties, ebpName="别的名字有限公司")
    errors = _errors(swx.file(filer, builder.message("311", [order], sender=party_of(filer))))
    assert errors[0]["code"] == "-10102" and errors[0]["path"].endswith("ceb:ebpName")
    assert parties.ebp.name in errors[0]["message"]


def test_a_code_may_be_named_by_customs_code_or_uscc(swx, filer, builder):
    from schemas.identifiers import make_uscc

    parties = builder.parties()
    customs, uscc = make_customs_code(builder.rng, "4403"), make_uscc(builder.rng, "440300")
    r = swx.http.post("/v1/enterprises", headers=swx.operator, json={
        "customsCode": customs, "uscc": uscc, "name": "深圳双码电子商务有限公司", "roles": ["ebp"],
        "customsOffice": "5300", "regionCode": "440300"})
    assert r.status_code == 201, r.text
    for code in (customs, uscc):
        order = builder.order(_with_party(parties, "ebp", Party(code, "深圳双码电子商务有限公司", "DXPENT0000000002")))
        assert swx.file(filer, builder.message("311", [order], sender=party_of(filer))).status_code == 201


def _register_full(swx, builder, **record):
    code = make_customs_code(builder.rng, "2200")
    body = {"customsCode": code, "name": f"青岛{code[-4:]}国际物流有限公司", "roles": ["logistics"],
            "customsOffice": "4200", "regionCode": "370200", **record}
    r = swx.http.post("/v1/enterprises", headers=swx.operator, json=body)
    assert r.status_code == 201, r.text
    return Party(code, body["name"], "DXPENT0000000003")


def test_outside_validity_fails(swx, filer, builder):
    parties = builder.parties()
    today = dt.date.today()
    expired = _register_full(swx, builder, validFrom=str(today - dt.timedelta(days=400)), validTo=str(today - dt.timedelta(days=2)))
    future = _register_full(swx, builder, validFrom=str(today + dt.timedelta(days=30)))
    for party, words in ((expired, "expired"), (future, "only from")):
        waybill = builder.waybill(builder.order(parties), _with_party(parties, "logistics", party))
        errors = _errors(swx.file(filer, builder.message("511", [waybill], sender=party_of(filer))))
        assert errors[0]["code"] == "-10102" and words in errors[0]["message"]


@pytest.mark.parametrize("action", ["suspend", "cancel"])
def test_suspended_or_cancelled_codes_fail_every_check(swx, filer, builder, action):
    parties = builder.parties()
    carrier = _register_full(swx, builder)
    r = swx.http.post(f"/v1/enterprises/{carrier.code}/{action}", headers=swx.operator, json={})
    assert r.status_code == 200, r.text
    waybill = builder.waybill(builder.order(parties), _with_party(parties, "logistics", carrier))
    errors = _errors(swx.file(filer, builder.message("511", [waybill], sender=party_of(filer))))
    assert errors[0]["code"] == "-10102" and ("suspended" in errors[0]["message"] or "cancelled" in errors[0]["message"])


def test_suspended_filer_gets_403(swx, builder):
    firm = swx.register(["ebp", "ebc"])
    body = builder.message("311", [builder.order(builder.parties())], sender=party_of(firm))
    assert swx.http.post(f"/v1/enterprises/{firm.code}/suspend", headers=swx.operator, json={}).status_code == 200
    assert swx.file(firm, body).status_code == 403
    assert swx.http.post(f"/v1/enterprises/{firm.code}/reinstate", headers=swx.operator, json={}).status_code == 200
    assert swx.file(firm, body).status_code == 201


def test_validate_reports_registry_findings(swx, filer, builder):
    parties = builder.parties()
    order = builder.order(_with_party(parties, "ebc", Party(make_customs_code(builder.rng), "无名", "X")))
    r = swx.file(filer, builder.message("311", [order], sender=party_of(filer)), path="/v1/validate")
    assert r.status_code == 200 and not r.json()["valid"]
    assert {e["code"] for e in r.json()["errors"]} == {"-10102"}


# -- who may read a document ------------------------------------------------------------------


def _firm_for(swx, role):
    firm = swx.register([role])
    return firm, Party(firm.code, firm.name, firm.dxp_id)


def test_named_party_read_matrix(swx, builder):
    """Filer, platform, seller, payment firm, logistics firm and agent each see the list naming them;
    an enterprise not named sees nothing, and a platform sees only the documents naming it."""
    parties = builder.parties()
    named = {}
    for attr in ("ebp", "ebc", "pay", "logistics", "agent"):
        firm, party = _firm_for(swx, attr)
        named[attr] = firm
        parties = _with_party(parties, attr, party)
    filer = swx.register(["agent"])
    decl = builder.declaration(parties)
    other = builder.declaration(builder.parties())  # a second list naming none of them
    r = swx.file(filer, builder.message("621", [decl["inventory"], other["inventory"]], sender=party_of(filer)))
    assert r.status_code == 201, r.text
    guid = r.json()["guid"]
    full = swx.http.get(f"/v1/filings/{guid}", headers=filer.auth).json()
    assert len(full["documents"]) == 2 and len(full["receipts"]) == 2

    readers = {"ebp": {"ebpCode"}, "ebc": {"ebcCode"}, "logistics": {"logisticsCode"}, "agent": {"agentCode"}}
    for attr, firm in named.items():
        r = swx.http.get(f"/v1/filings/{guid}", headers=firm.auth)
        if attr == "pay":  # a list does not name the payment firm
            assert r.status_code == 404
            continue
        assert r.status_code == 200, (attr, r.text)
        seen = r.json()
        assert [d["key"]["orderNo"] for d in seen["documents"]] == [decl["inventory"].head["orderNo"]], attr
        assert len(seen["receipts"]) == 1 and readers[attr]

    stranger = swx.register(["ebp", "ebc", "logistics", "agent", "pay"])
    assert swx.http.get(f"/v1/filings/{guid}", headers=stranger.auth).status_code == 404
    assert swx.http.get(f"/v1/filings/{guid}", headers=swx.operator).status_code == 200


@pytest.mark.parametrize("kind, code, attrs", [
    ("order", "311", ("ebp", "ebc", "pay")),
    ("payment", "411", ("pay", "ebp")),
    ("waybill", "511", ("logistics",)),
])
def test_each_document_kind_is_readable_by_the_parties_it_names(swx, builder, kind, code, attrs):
    parties = builder.parties()
    firms = {}
    for attr in attrs:
        firm, party = _firm_for(swx, attr)
        firms[attr] = firm
        parties = _with_party(parties, attr, party)
    filer = swx.register(["ebp", "ebc", "pay", "logistics"])
    doc = builder.declaration(parties)[kind]
    if kind == "order" and not doc.head.get("payCode"):
        doc = builder.order(parties, payCode=parties.pay.code, payName=parties.pay.name)
    r = swx.file(filer, builder.message(code, [doc], sender=party_of(filer)))
    assert r.status_code == 201, r.text
    for attr, firm in firms.items():
        assert swx.http.get(f"/v1/filings/{r.json()['guid']}", headers=firm.auth).status_code == 200, attr
