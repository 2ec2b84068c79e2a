"""Every business rule of intake (CEB.md §1, §3, §5), each with a failing and a passing case, over real HTTP.

A passing case is filed and must be accepted (201). A failing case must be refused (422, problem+json)
with a finding that names the rule's code, the field (``path``), its ``line`` and the document.
"""

from __future__ import annotations

import random
import re
from datetime import datetime
from decimal import Decimal

import pytest
from lxml import etree

from gateway.intake.documents import schema_fields
from gateway.intake.rules import is_real_time
from gateway.intake.validate import check
from kit.xmlsafe import UnsafeXml, parse_untrusted
from schemas.builder import MessageBuilder, Party
from schemas.catalog import BY_KIND, CEB_NS, ENTERPRISE_FIELDS
from schemas.fields import FIELDS
from schemas.identifiers import (
    USCC_ALPHABET,
    id_check_char,
    is_valid_id_number,
    make_customs_code,
    make_uscc,
)
from schemas.loader import ceb_schema
from tests.fixtures.parties import party_of

CODE = {kind: m.code for kind, m in BY_KIND.items()}
ORDER, LIST = BY_KIND["order"], BY_KIND["inventory"]
VALID_ID = "11010519491231002X"
BAD_CHECK_ID = "110105194912310021"


# --- helpers ----------------------------------------------------------------------------------


def label(kind: str) -> str:
    """How a finding names the first document of this kind: "Order[1]", "InvtCancel[1]", …"""
    m = BY_KIND[kind]
    return f"{m.wrapper or m.head}[1]"


def make(b, p, kind, *, lines=1, trade_mode=None, lines_overrides=None, **over):
    """One document of ``kind`` (with the documents it derives from); overrides go to that document only."""
    lo = {"lines_overrides": lines_overrides} if lines_overrides else {}

    def mine(k):
        return {**lo, **over} if k == kind else {}

    order = b.order(p, lines=lines, trade_mode=trade_mode, **mine("order"))
    if kind == "order":
        return order
    if kind == "payment":
        return b.payment(order, p, **over)
    waybill = b.waybill(order, p, **mine("waybill"))
    if kind == "waybill":
        return waybill
    if kind == "waybill_status":
        return b.waybill_status(waybill, p, **over)
    if kind == "delivery":
        more = [b.waybill(b.order(p), p) for _ in range(lines - 1)]
        return b.delivery([waybill, *more], p, **over)
    inventory = b.inventory(order, waybill, p, trade_mode=trade_mode, **mine("inventory"))
    if kind == "inventory":
        return inventory
    after = {"cancel": b.cancel, "refund": b.refund}[kind]
    return after(inventory, p, b.invt_no(inventory), **mine(kind))


def body_of(b, firm, docs, **msg) -> bytes:
    docs = docs if isinstance(docs, list) else [docs]
    return b.message(CODE[docs[0].kind], docs, sender=party_of(firm), **msg)


def file(swx, firm, b, docs, *, path="/v1/filings", accept="application/json", **msg):
    return swx.file(firm, body_of(b, firm, docs, **msg), accept=accept, path=path)


def same_key(b, doc, **head):
    """A new document with the business key (and everything else) of ``doc``, head fields changed."""
    return type(doc)(doc.kind, dict(doc.head, guid=b.guid(), **head), doc.lines)


def accepted(r) -> dict:
    assert r.status_code == 201, r.text
    return r.json()


def finding(r, code, field=None, document=None, layer="rule") -> dict:
    """The finding with ``code`` (on ``field``, in ``document``) of a 422 answer."""
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    hits = [e for e in errors if e["code"] == code and e["layer"] == layer
            and (field is None or (e["path"] or "").endswith(f"ceb:{field}"))]
    assert hits, f"no {layer} finding {code} on {field}: {errors}"
    e = hits[0]
    assert isinstance(e["line"], int)
    if document is not None:
        assert (e["document"] or "").startswith(document), e
    return e


def with_delta(value: str, delta: str) -> str:
    return str(Decimal(value) + Decimal(delta))


def bad_uscc(rng: random.Random) -> str:
    good = make_uscc(rng)
    return good[:17] + next(c for c in USCC_ALPHABET if c != good[17])


@pytest.fixture
def p(builder):
    return builder.parties()


# --- amounts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("delta, ok", [("0", True), ("0.00001", False), ("-0.00001", False), ("1", False)])
def test_actural_paid_is_the_sum_exact_to_five_decimals(swx, filer, builder, p, delta, ok):
    order = builder.order(p, freight="10.00001")  # totals then carry five decimals
    assert order.head["acturalPaid"].endswith("1")
    order.head["acturalPaid"] = with_delta(order.head["acturalPaid"], delta)
    r = file(swx, filer, builder, order)
    if ok:
        accepted(r)
    else:
        finding(r, ORDER.check_code, "acturalPaid", label("order"))


@pytest.mark.parametrize("kind, code", [("order", ORDER.check_code), ("inventory", LIST.check_code)])
@pytest.mark.parametrize("ok", [True, False])
def test_total_price_is_price_times_qty_on_every_line(swx, filer, builder, p, kind, code, ok):
    second = {"price": "12.34567", "qty": "3", "totalPrice": "37.03701" if ok else "37.03700"}
    doc = make(builder, p, kind, lines=2, lines_overrides=[{}, second])
    r = file(swx, filer, builder, doc)
    if ok:
        accepted(r)
    else:
        e = finding(r, code, "totalPrice", label(kind))
        assert "List[2]/ceb:totalPrice" in e["path"]


@pytest.mark.parametrize("delta, ok", [("0", True), ("1", False)])
def test_goods_value_is_the_sum_of_line_totals(swx, filer, builder, p, delta, ok):
    order = builder.order(p, lines=2)
    for name in ("goodsValue", "acturalPaid"):  # acturalPaid follows, so that only goodsValue is wrong
        order.head[name] = with_delta(order.head[name], delta)
    r = file(swx, filer, builder, order)
    if ok:
        accepted(r)
    else:
        finding(r, ORDER.check_code, "goodsValue", label("order"))


# --- line numbers and quantities ---------------------------------------------------------------


@pytest.mark.parametrize("kind, code", [
    ("order", "-301002"), ("inventory", "-621027"),
    ("refund", BY_KIND["refund"].check_code), ("delivery", BY_KIND["delivery"].check_code),
])
@pytest.mark.parametrize("gnums, ok", [((1, 2, 3), True), ((1, 2, 2), False), ((1, 3, 2), False), ((1, 2, 4), False)])
def test_gnum_runs_one_two_three(swx, filer, builder, p, kind, code, gnums, ok):
    doc = make(builder, p, kind, lines=3)
    for line, gnum in zip(doc.lines, gnums, strict=True):
        line["gnum"] = str(gnum)
    r = file(swx, filer, builder, doc)
    if ok:
        accepted(r)
    else:
        finding(r, code, "gnum", label(kind))


@pytest.mark.parametrize("line, bad_field", [
    ({"unit2": "035", "qty2": "1.5"}, None),
    ({"unit2": None, "qty2": None}, None),
    ({"unit2": "035", "qty2": None}, "qty2"),
    ({"unit2": None, "qty2": "1"}, "unit2"),
    ({"unit2": "035", "qty2": "0"}, "qty2"),
    ({"unit2": "035", "qty2": "-1"}, "qty2"),
])
def test_unit2_and_qty2_go_together(swx, filer, builder, p, line, bad_field):
    r = file(swx, filer, builder, make(builder, p, "inventory", lines_overrides=[line]))
    if bad_field is None:
        accepted(r)
    else:
        finding(r, "-625009", bad_field, label("inventory"))


@pytest.mark.parametrize("kind, over, bad_field", [
    ("inventory", {"grossWeight": "2.5", "netWeight": "2.5"}, None),
    ("inventory", {"grossWeight": "2.5", "netWeight": "2.50001"}, "netWeight"),
    ("inventory", {"grossWeight": "0", "netWeight": "0"}, "grossWeight"),
    ("inventory", {"grossWeight": "2.5", "netWeight": "0"}, "netWeight"),
    ("waybill", {"weight": "0.001"}, None),
    ("waybill", {"weight": "0"}, "weight"),
    ("waybill", {"weight": "-1.5"}, "weight"),
])
def test_weights(swx, filer, builder, p, kind, over, bad_field):
    r = file(swx, filer, builder, make(builder, p, kind, **over))
    if bad_field is None:
        accepted(r)
    else:
        finding(r, BY_KIND[kind].check_code, bad_field, label(kind))


# --- identities and codes ----------------------------------------------------------------------

ID_FIELDS = {"payment": ("payerIdType", "payerIdNumber")}


@pytest.mark.parametrize("kind", ["order", "payment", "inventory", "cancel", "refund"])
@pytest.mark.parametrize("id_type, number, bad", [
    ("1", VALID_ID, None),
    ("1", BAD_CHECK_ID, "number"),
    ("1", "1101051949123100", "number"),
    ("1", "11010519491231002Y", "number"),
    ("2", VALID_ID, "type"),
])
def test_id_numbers_pass_gb11643_and_id_type_is_1(swx, filer, builder, p, kind, id_type, number, bad):
    type_field, number_field = ID_FIELDS.get(kind, ("buyerIdType", "buyerIdNumber"))
    r = file(swx, filer, builder, make(builder, p, kind, **{type_field: id_type, number_field: number}))
    if bad is None:
        accepted(r)
    else:
        finding(r, BY_KIND[kind].check_code, type_field if bad == "type" else number_field, label(kind))


@pytest.mark.parametrize("kind, field", [
    ("order", "ebpCode"), ("order", "ebcCode"), ("order", "payCode"), ("payment", "payCode"),
    ("waybill", "logisticsCode"), ("inventory", "agentCode"), ("inventory", "assureCode"),
    ("cancel", "ebcCode"), ("refund", "agentCode"), ("delivery", "operatorCode"),
])
@pytest.mark.parametrize("shape, problem", [
    ("customs", None), ("uscc", None),
    ("bad-uscc", "GB 32100"), ("lower-customs", "capital letters"), ("12-chars", "10-character customs code or"),
])
def test_enterprise_codes(swx, filer, builder, p, kind, field, shape, problem):
    rng = random.Random(f"{kind}{field}{shape}{builder.seed}")
    code = {
        "customs": lambda: make_customs_code(rng),
        "uscc": lambda: make_uscc(rng),
        "bad-uscc": lambda: bad_uscc(rng),
        "lower-customs": lambda: make_customs_code(rng, "11ab"),
        "12-chars": lambda: make_customs_code(rng) + "00",
    }[shape]()
    doc = make(builder, p, kind, **{field: code})
    if problem is None:  # a well-formed code passes once it is registered for the role, under the name used
        name = doc.head.get(field.replace("Code", "Name"), "测试担保有限公司")
        reg = {"code": code, "name": name, "roles": [ENTERPRISE_FIELDS[field]]}
        assert swx.http.post("/v1/enterprises", json=reg, headers=swx.operator).status_code == 201
        accepted(file(swx, filer, builder, doc))
    else:  # refused for its shape, not merely as unknown
        e = finding(file(swx, filer, builder, doc), "-10102", field, label(kind))
        assert problem in e["message"] and f"'{code}'" in e["message"], e


@pytest.mark.parametrize("kind", ["inventory", "refund"])
@pytest.mark.parametrize("gcode, ok", [("3304990099", True), ("33049900AB", False), ("3304 90099", False)])
def test_gcode_is_ten_digits(swx, filer, builder, p, kind, gcode, ok):
    r = file(swx, filer, builder, make(builder, p, kind, lines_overrides=[{"gcode": gcode}]))
    if ok:
        accepted(r)
    else:
        finding(r, BY_KIND[kind].check_code, "gcode", label(kind))


@pytest.mark.parametrize("trade_mode, over, bad_field", [
    ("9610", {}, None),
    ("1210", {}, None),
    ("9610", {"tradeMode": "9710"}, "tradeMode"),
    ("9610", {"trafNo": None}, "trafNo"),
    ("9610", {"voyageNo": None}, "voyageNo"),
    ("9610", {"billNo": None}, "billNo"),
    ("1210", {"ieFlag": "E"}, "ieFlag"),
])
def test_list_trade_mode_and_direct_purchase_transport(swx, filer, builder, p, trade_mode, over, bad_field):
    r = file(swx, filer, builder, make(builder, p, "inventory", trade_mode=trade_mode, **over))
    if bad_field is None:
        accepted(r)
    else:
        finding(r, LIST.check_code, bad_field, label("inventory"))


@pytest.mark.parametrize("kind", ["waybill", "inventory"])
@pytest.mark.parametrize("pack_no, ok", [("1", True), ("2", False), ("0", False)])
def test_pack_no_is_one(swx, filer, builder, p, kind, pack_no, ok):
    r = file(swx, filer, builder, make(builder, p, kind, packNo=pack_no))
    if ok:
        accepted(r)
    else:
        finding(r, BY_KIND[kind].check_code, "packNo", label(kind))


# --- head fields --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, over, bad_field", [
    ("order", {"appType": "4"}, "appType"),
    ("cancel", {"appType": "2"}, "appType"),
    ("cancel", {"appType": "3"}, "appType"),
    ("order", {"appStatus": "1"}, None),
    ("order", {"appStatus": "3"}, "appStatus"),
    ("waybill_status", {"appStatus": "0"}, "appStatus"),
    ("payment", {"appTime": "20240229235959"}, None),
    ("payment", {"appTime": "20230229120000"}, "appTime"),
    ("order", {"appTime": "20231301080000"}, "appTime"),
    ("delivery", {"appTime": "20230101246000"}, "appTime"),
    ("inventory", {"declTime": "20230231"}, "declTime"),
    ("order", {"guid": "9d5c0f2e-7b1a-4c3e-9f61-2a8b4d6e1f03"}, "guid"),
    ("refund", {"guid": "9D5C0F2E-7B1A-4C3E-9F61-2A8B4D6E1FXY"}, "guid"),
    ("order", {"guid": "9D5C0F2E-7B1A-4C3E-9F61-2A8B4D6E1F03"}, None),
])
def test_head_fields(swx, filer, builder, p, kind, over, bad_field):
    r = file(swx, filer, builder, make(builder, p, kind, **over))
    if bad_field is None:
        accepted(r)
    else:
        finding(r, BY_KIND[kind].check_code, bad_field, label(kind))


def test_message_guid_is_an_upper_case_uuid(swx, filer, builder, p):
    r = file(swx, filer, builder, builder.order(p), guid="9d5c0f2e-7b1a-4c3e-9f61-2a8b4d6e1f03")
    assert r.status_code == 422, r.text
    assert any("guid" in (e["path"] or "") + e["message"] for e in r.json()["errors"]), r.text


def test_cancel_allows_app_type_1(swx, filer, builder, p):
    accepted(file(swx, filer, builder, make(builder, p, "cancel", appType="1")))


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


# --- the quick paths of the checks decide as the plain ones did (no server needed) ------------------


SENDER = Party("3301960AB1", "基准测试电子商务有限公司", "DXPENT3301960AB1")
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _strptime_says(text: str, fmt: str, width: int) -> bool:
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return False
    return len(text) == width


@pytest.mark.parametrize("text", [
    "20240229235959", "20230229120000", "20240230120000", "20230431000000", "20231301080000", "20230001080000",
    "20230100080000", "20230132080000", "20230101240000", "20230101236000", "20230101235960", "20230101235961",
    "00000101120000", "00010101000000", "99991231235959", "2023010112000", "202301011200000", " 20230101120000",
    "2023010 1120000", "٢٠٢٣٠١٠١١٢٠٠٠٠", "2023-01-01T12:", "20240229", "20230229", "20230231", "00000101",
    "2023 101", "2023011 ", "202301٠1", "",
])
def test_real_time_agrees_with_strptime(text):
    for fmt, width in (("%Y%m%d%H%M%S", 14), ("%Y%m%d", 8)):
        assert is_real_time(text, fmt, width) is _strptime_says(text, fmt, width), (text, fmt)


def test_real_time_agrees_with_strptime_on_every_boundary():
    for year in ("0000", "0001", "1900", "2000", "2023", "2024"):
        for month in range(14):
            for day in range(33):
                ymd = f"{year}{month:02d}{day:02d}"
                assert is_real_time(ymd, "%Y%m%d", 8) is _strptime_says(ymd, "%Y%m%d", 8), ymd
                for hms in ("000000", "235959", "240000", "236000", "235960", "995999"):
                    text = ymd + hms
                    assert is_real_time(text, "%Y%m%d%H%M%S", 14) is _strptime_says(text, "%Y%m%d%H%M%S", 14), text


def test_id_check_digit_quick_path_agrees_with_the_weights():
    rng = random.Random(5)
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    for _ in range(2000):
        body = "".join(rng.choice("0123456789") for _ in range(17))
        assert id_check_char(body) == "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
    assert id_check_char("11010519491231002") == "X" and is_valid_id_number(VALID_ID)
    assert id_check_char(VALID_ID) == "X"  # 18 characters: the 18th is not read, as before
    assert not is_valid_id_number(BAD_CHECK_ID) and not is_valid_id_number(VALID_ID + "\n1")
    assert is_valid_id_number(VALID_ID + "\n")  # the shape regex's $ takes a final newline, as before
    assert is_valid_id_number("١" + VALID_ID[1:]) is is_valid_id_number("1" + VALID_ID[1:])  # other digits too


def test_schema_fields_are_read_from_the_schema():
    for mtype in BY_KIND.values():
        head, lines = schema_fields(mtype)
        assert head == {f.name for f in FIELDS[mtype.head]}, mtype.kind
        assert lines == ({f.name for f in FIELDS[mtype.lines]} if mtype.lines else frozenset()), mtype.kind


def _order_message(**head) -> bytes:
    b = MessageBuilder(99)
    return b.message("311", [b.order(b.parties(), lines=2, **head)], sender=SENDER)


@pytest.mark.parametrize("app_time", ["20230101235960", "00000101120000", "20240230120000", "20230101240000"])
def test_impossible_app_time_is_still_found(app_time):
    found = check(_order_message(appTime=app_time), max_depth=32, cop_code=SENDER.code).findings
    assert [(f.code, f.path) for f in found] == [(ORDER.check_code, "/ceb:CEB311Message/ceb:Order/ceb:OrderHead/ceb:appTime")]


def _with_xsi_type(body: bytes, encoding: str, declaration: str = f'xmlns:xsi="{XSI}"') -> bytes:
    text = body.decode().split("?>", 1)[1]
    text = text.replace("<ceb:freight>", f'<ceb:freight {declaration} xsi:type="ceb:Amount">', 1)
    return (f'<?xml version="1.0" encoding="{encoding}"?>' + text).encode(encoding)


@pytest.mark.parametrize("encoding, declaration", [
    ("UTF-8", f'xmlns:xsi="{XSI}"'), ("GBK", f'xmlns:xsi="{XSI}"'), ("UTF-16", f'xmlns:xsi="{XSI}"'),
    ("UTF-8", f'xmlns:xsi="{XSI.replace("-", "&#45;")}"'), ("GB18030", f'xmlns:xsi="{XSI.replace("/", "&#x2F;")}"'),
])
def test_xsi_type_is_found_however_spelt(encoding, declaration):
    found = check(_with_xsi_type(_order_message(), encoding, declaration), max_depth=32, cop_code=SENDER.code).findings
    xsi = [f for f in found if f.message == "xsi:type is not allowed in CEB messages"]
    assert [f.path for f in xsi] == ["/ceb:CEB311Message/ceb:Order/ceb:OrderHead/ceb:freight"], found


def test_a_valid_message_is_still_depth_checked_where_the_schema_does_not_bound_it():
    body = _order_message()
    assert not check(body, max_depth=32, cop_code=SENDER.code).findings
    with pytest.raises(UnsafeXml, match="nested deeper than 3 levels"):
        check(body, max_depth=3, cop_code=SENDER.code)  # shallower than the schema's 4 levels
    deep = b"<x>" * 40 + b"</x>" * 40
    extension = (b"<ceb:ExtendMessage><ceb:name>n</ceb:name><ceb:version>1</ceb:version><ceb:Message>"
                 + deep + b"</ceb:Message></ceb:ExtendMessage>")
    extended = body.replace(b"</ceb:BaseTransfer>", b"</ceb:BaseTransfer>" + extension)
    assert ceb_schema().validate(etree.fromstring(extended))  # valid, and deeper than anything else
    with pytest.raises(UnsafeXml, match="nested deeper than 32 levels") as exc:
        check(extended, max_depth=32, cop_code=SENDER.code)
    assert exc.value.line is not None
    invalid = body.replace(b"<ceb:freight>", b"<ceb:freight>" + deep)
    with pytest.raises(UnsafeXml, match="nested deeper than 32 levels"):
        check(invalid, max_depth=32, cop_code=SENDER.code)


def test_a_doctype_without_a_bang_byte_is_still_refused():
    # UTF-7 spells "<!" in Base64: no "!" byte, no "<!DOCTYPE" bytes; libxml2 still reads a DTD.
    body = (b'<?xml version="1.0" encoding="UTF-7"?>+ADwAIQ-DOCTYPE r +AFs-+ADwAIQ-ENTITY x +ACI-y+ACIAPgBd-+AD4-'
            b"<r>+ACY-x;</r>")
    assert b"!" not in body
    with pytest.raises(UnsafeXml, match="DTD"):
        parse_untrusted(body, max_depth=32)
    late = b"<?xml version='1.0'?>" + b"<?pi " + b"x" * 9000 + b"?><!DOCTYPE r><r/>"  # past the first 8 KiB
    with pytest.raises(UnsafeXml, match="DTD"):
        parse_untrusted(late, max_depth=32)
