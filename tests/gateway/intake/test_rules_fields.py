"""The business rules of intake on the fields of a document (CEB.md §1, §3, §5), each with a failing
and a passing case, over real HTTP: amounts, line numbers and quantities, identities and codes, head
fields.

A passing case is filed and must be accepted (201). A failing case must be refused (422, problem+json)
with a finding that names the rule's code, the field (``path``), its ``line`` and the document."""

from __future__ import annotations

import random

import pytest

from schemas.catalog import BY_KIND, ENTERPRISE_FIELDS
from schemas.identifiers import make_customs_code, make_uscc
from tests.fixtures.intake import BAD_CHECK_ID, LIST, ORDER, VALID_ID, accepted, bad_uscc, file, finding, label, make, with_delta

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
