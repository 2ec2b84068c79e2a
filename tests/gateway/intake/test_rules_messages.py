"""The business rules of intake on a message as a whole, over real HTTP: signatures, business keys
(duplicates, changes and deletions), every finding at once and all or nothing, /v1/validate, the DXP
envelope and the sender, and the receipts of rejections.

A passing case is filed and must be accepted (201). A failing case must be refused (422, problem+json)
with a finding that names the rule's code, the field (``path``), its ``line`` and the document."""

from __future__ import annotations

import random
import re

import pytest
from lxml import etree

from schemas.catalog import BY_KIND, CEB_NS
from schemas.loader import ceb_schema
from tests.fixtures.intake import (
    BAD_CHECK_ID,
    CODE,
    ORDER,
    accepted,
    bad_uscc,
    body_of,
    file,
    finding,
    label,
    make,
    same_key,
    with_delta,
)
from tests.fixtures.parties import party_of

# --- signatures ---------------------------------------------------------------------------------


def test_signed_list_passes(swx, filer, builder, p):
    accepted(file(swx, filer, builder, make(builder, p, "inventory", appStatus="2")))


def test_declared_list_without_signature_fails_the_schema(swx, filer, builder, p):
    r = file(swx, filer, builder, make(builder, p, "inventory", appStatus="2"), sign=False)
    assert r.status_code == 422, r.text
    assert any(e["layer"] == "schema" and e["code"] == "0002" for e in r.json()["errors"]), r.text


def test_tampered_signed_list_fails_the_signature_check(swx, filer, builder, p):
    body = body_of(builder, filer, make(builder, p, "inventory", buyerTelephone="13500000000"))
    tampered = body.replace(b">13500000000<", b">13500000001<")
    assert tampered != body
    r = swx.file(filer, tampered)
    e = finding(r, "-621029")
    assert e["path"].endswith("ds:Signature")


# --- business keys ------------------------------------------------------------------------------


def test_duplicate_key_within_one_message(swx, filer, builder, p):
    first = builder.order(p)
    second = builder.order(p, order_no=first.head["orderNo"])
    r = file(swx, filer, builder, [first, second])
    e = finding(r, "-301010", "orderNo", "Order[2]")
    assert first.head["orderNo"] in e["document"]
    accepted(file(swx, filer, builder, first))  # refused as a whole: the key stayed free


@pytest.mark.parametrize("kind, code", [
    ("order", "-301010"), ("inventory", "-621004"), ("payment", BY_KIND["payment"].duplicate_code),
])
def test_duplicate_key_across_filings(swx, filer, builder, p, kind, code):
    doc = make(builder, p, kind)
    accepted(file(swx, filer, builder, doc))
    r = file(swx, filer, builder, same_key(builder, doc))
    finding(r, code, BY_KIND[kind].key[-1], label(kind))


def test_app_type_2_changes_my_document(swx, filer, builder, p):
    order = builder.order(p)
    accepted(file(swx, filer, builder, order))
    answer = accepted(file(swx, filer, builder, same_key(builder, order, appType="2", note="改地址")))
    assert answer["documents"][0]["version"] == 2
    assert answer["documents"][0]["appType"] == "2"
    r = swx.http.get(f"/v1/filings/{answer['guid']}", headers=filer.auth)
    assert r.status_code == 200, r.text
    doc = r.json()["documents"][0]
    assert doc["version"] == 2 and doc["current"]["version"] == 2


@pytest.mark.parametrize("kind", ["order", "payment", "waybill", "inventory", "refund"])
@pytest.mark.parametrize("app_type", ["2", "3"])
def test_app_type_2_or_3_on_a_missing_key(swx, filer, builder, p, kind, app_type):
    r = file(swx, filer, builder, make(builder, p, kind, appType=app_type))
    finding(r, BY_KIND[kind].missing_code, "appType", label(kind))


def test_app_type_3_deletes_and_the_key_can_be_filed_anew(swx, filer, builder, p):
    order = builder.order(p)
    accepted(file(swx, filer, builder, order))
    gone = accepted(file(swx, filer, builder, same_key(builder, order, appType="3")))
    assert gone["documents"][0]["status"] == "-1"
    r = file(swx, filer, builder, same_key(builder, order, appType="2"))
    finding(r, ORDER.missing_code, "appType", label("order"))
    r = file(swx, filer, builder, same_key(builder, order, appType="3"))
    finding(r, ORDER.missing_code, "appType", label("order"))
    accepted(file(swx, filer, builder, same_key(builder, order, appType="1")))


@pytest.mark.parametrize("app_type", ["2", "3"])
def test_another_firm_cannot_change_my_document(swx, filer, builder, p, app_type):
    order = builder.order(p)
    accepted(file(swx, filer, builder, order))
    other = swx.register(["ebp", "ebc"])
    r = file(swx, other, builder, same_key(builder, order, appType=app_type))
    finding(r, ORDER.missing_code, "appType", label("order"))
    # and my document is untouched: I can still change it, as version 2
    mine = accepted(file(swx, filer, builder, same_key(builder, order, appType="2")))
    assert mine["documents"][0]["version"] == 2


# --- the message as a whole ------------------------------------------------------------------------


def test_all_findings_are_listed_at_once(swx, filer, builder, p):
    order = builder.order(p, buyerIdNumber=BAD_CHECK_ID, appTime="20230230120000")
    order.head["acturalPaid"] = with_delta(order.head["acturalPaid"], "0.01")
    r = file(swx, filer, builder, order)
    assert r.status_code == 422, r.text
    for field in ("buyerIdNumber", "appTime", "acturalPaid"):
        finding(r, ORDER.check_code, field, label("order"))
    assert len(r.json()["errors"]) == 3


def test_all_or_nothing(swx, filer, builder, p):
    good, bad = builder.order(p), builder.order(p, buyerIdNumber=BAD_CHECK_ID)
    r = file(swx, filer, builder, [good, bad])
    finding(r, ORDER.check_code, "buyerIdNumber", "Order[2]")
    assert all(e["document"].startswith("Order[2]") for e in r.json()["errors"])
    assert accepted(file(swx, filer, builder, good))["documents"][0]["version"] == 1


# --- /v1/validate ------------------------------------------------------------------------------------


@pytest.mark.parametrize("over, code, field", [
    ({"buyerIdNumber": BAD_CHECK_ID}, ORDER.check_code, "buyerIdNumber"),
    ({"ebpCode": bad_uscc(random.Random(7))}, "-10102", "ebpCode"),
    ({"appStatus": "9"}, ORDER.check_code, "appStatus"),
])
def test_validate_reports_the_same_findings(swx, filer, builder, p, over, code, field):
    r = file(swx, filer, builder, builder.order(p, **over), path="/v1/validate")
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["valid"] is False
    hits = [e for e in result["errors"] if e["code"] == code and e["path"].endswith(f"ceb:{field}")]
    assert hits and hits[0]["document"].startswith("Order[1]"), result


def test_validate_accepts_and_stores_nothing(swx, filer, builder, p):
    order = builder.order(p)
    body = body_of(builder, filer, order)
    r = swx.file(filer, body, path="/v1/validate")
    assert r.status_code == 200 and r.json()["valid"] is True, r.text
    assert r.json()["errors"] == []
    assert accepted(swx.file(filer, body))["documents"][0]["version"] == 1  # the key was still free
    r = swx.file(filer, body_of(builder, filer, same_key(builder, order)), path="/v1/validate")
    assert r.json()["valid"] is False
    assert [e["code"] for e in r.json()["errors"]] == ["-301010"]


# --- envelope and sender ----------------------------------------------------------------------------


def wrapped(b, firm, doc, **env) -> bytes:
    return b.wrap_dxp(body_of(b, firm, doc), **{"sender_id": firm.dxp_id, **env})


def test_dxp_envelope_accepted(swx, filer, builder, p):
    answer = accepted(swx.file(filer, wrapped(builder, filer, builder.order(p))))
    assert answer["messageType"] == "CEB311Message"


@pytest.mark.parametrize("env, code", [({"receiver_id": "DXPEDCCEB0000003"}, "2001"),
                                       ({"sender_id": "DXPENT0000000000"}, "2002")])
def test_dxp_envelope_addresses(swx, filer, builder, p, env, code):
    r = swx.file(filer, wrapped(builder, filer, builder.order(p), **env))
    assert r.status_code == 422, r.text
    assert code in [e["code"] for e in r.json()["errors"]]


def test_dxp_data_must_be_base64(swx, filer, builder, p):
    body = wrapped(builder, filer, builder.order(p))
    broken = re.sub(rb"<Data>[^<]*</Data>", b"<Data>not*base64!</Data>", body)
    assert broken != body
    r = swx.file(filer, broken)
    assert r.status_code == 422, r.text
    assert [e["code"] for e in r.json()["errors"]] == ["0002"]


def test_foreign_cop_code_is_forbidden_but_only_a_finding_on_validate(swx, filer, builder, p):
    other = swx.register(["ebp"])
    body = builder.message("311", [builder.order(p)], sender=party_of(other))
    r = swx.file(filer, body)
    assert r.status_code == 403, r.text
    r = swx.file(filer, body, path="/v1/validate")
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is False
    (e,) = [e for e in r.json()["errors"] if e["code"] == "2002"]
    assert e["path"].endswith("ceb:copCode")


# --- receipts of rejections -------------------------------------------------------------------------


def xml_receipt(r, root: str) -> etree._Element:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/xml")
    tree = etree.fromstring(r.content)
    assert tree.tag == f"{{{CEB_NS}}}{root}"
    schema = ceb_schema()
    assert schema.validate(tree), schema.error_log
    return tree


@pytest.mark.parametrize("kind", list(CODE))
def test_rule_rejection_answers_the_message_receipt(swx, filer, builder, p, kind):
    r = file(swx, filer, builder, make(builder, p, kind, appStatus="7"), accept="application/xml")
    tree = xml_receipt(r, BY_KIND[kind].receipt_root)
    statuses = tree.findall(f".//{{{CEB_NS}}}returnStatus")
    assert [s.text for s in statuses] == [BY_KIND[kind].check_code]


def test_schema_rejection_answers_ceb900(swx, filer, builder, p):
    r = file(swx, filer, builder, make(builder, p, "inventory"), sign=False, accept="application/xml")
    tree = xml_receipt(r, "CEB900Message")
    assert tree.findtext(f".//{{{CEB_NS}}}returnStatus") == "-0002"
    assert tree.findtext(f".//{{{CEB_NS}}}oriMessageType") == "CEB621Message"
