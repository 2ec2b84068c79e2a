"""The message builder makes valid, consistent CEB import messages."""

from __future__ import annotations

import base64
from decimal import ROUND_HALF_UP, Decimal

import pytest
from lxml import etree

from schemas import signature  # (not `from … import test_signing_identity`: pytest would collect it)
from schemas.builder import CONSUMPTION_TAX, Doc, MessageBuilder, Parties, combined_rate
from schemas.catalog import DS_NS, DXP_NS, FILED
from schemas.fields import FIELDS, names
from schemas.identifiers import is_customs_code, is_valid_id_number, is_valid_uscc
from tests.fixtures.messages import CODES, OFFICIAL, SEEDS, C, _assert_valid, _official, _project_schema, build, needs_official

# --- schema validity ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("code", CODES)
def test_every_filed_type_validates_against_the_official_xsd(import_xsd, code, seed):
    data = build(code, seed)
    _assert_valid(import_xsd, data)
    root = etree.fromstring(data)
    assert root.tag == f"{C}CEB{code}Message"
    assert (root.find(f"{{{DS_NS}}}Signature") is not None) == FILED[code].signed


@pytest.mark.parametrize("code", CODES)
def test_single_document_and_long_orders_validate(import_xsd, code):
    _assert_valid(import_xsd, build(code, 7, docs=1, lines=1))
    _assert_valid(import_xsd, build(code, 8, docs=2, lines=12))


def test_ninety_nine_lines_and_hundred_documents(import_xsd):
    b = MessageBuilder(5)
    parties = b.parties()
    order = b.order(parties, lines=99)
    assert [line["gnum"] for line in order.lines] == [str(n) for n in range(1, 100)]
    assert Decimal(order.head["acturalPaid"]) <= 5000
    orders = [b.order(parties) for _ in range(100)]
    _assert_valid(import_xsd, b.message("311", [order], sender=parties.ebp))
    _assert_valid(import_xsd, b.message("311", orders, sender=parties.ebp))
    with pytest.raises(ValueError):
        b.message("311", orders + [order], sender=parties.ebp)
    with pytest.raises(ValueError):
        b.message("411", [order], sender=parties.pay)


@pytest.mark.parametrize("code", CODES)
def test_messages_validate_against_the_project_schema_too(code):
    schema = _project_schema("ceb_schema")
    if schema is None:
        pytest.skip("schemas.loader.ceb_schema is not available")
    for seed in SEEDS[:3]:
        _assert_valid(schema, build(code, seed))


@needs_official
def test_field_tables_match_the_official_xsd():
    xs = "{http://www.w3.org/2001/XMLSchema}"
    top = {e.get("name"): e for e in etree.parse(str(OFFICIAL / "import.xsd")).getroot().findall(f"{xs}element")}
    for node, fields in FIELDS.items():
        official = []
        for el in top[node].iter(f"{xs}element"):
            if el is top[node]:
                continue
            facets = {etree.QName(f).localname: f.get("value")
                      for f in el.findall(f"{xs}simpleType/{xs}restriction/*")}
            base = el.find(f"{xs}simpleType/{xs}restriction")
            type_name = base.get("base") if base is not None else el.get("type")
            kind = {"xs:decimal": "dec", "xs:int": "int"}.get(type_name, "str")
            size = facets.get("length") or facets.get("maxLength")
            official.append((el.get("name"), el.get("minOccurs", "1") != "0",
                             int(size) if size and kind == "str" else None, "length" in facets, kind))
        assert [(f.name, f.required, f.max_len, f.exact, f.kind) for f in fields] == official, node


# --- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_same_seed_gives_identical_bytes_and_another_seed_other_data(code):
    assert build(code, 11) == build(code, 11)
    assert build(code, 11) != build(code, 12)


def test_different_seeds_give_different_parties_and_people():
    a, b = MessageBuilder(1), MessageBuilder(2)
    pa, pb = a.parties(), b.parties()
    assert pa.ebp.code != pb.ebp.code
    assert a.order(pa).head["buyerIdNumber"] != b.order(pb).head["buyerIdNumber"]


# --- rules inside one document (CEB.md §3, §4) ------------------------------------------------


def _d(value: str) -> Decimal:
    return Decimal(value)


def _check_order(order: Doc) -> None:
    h = order.head
    assert h["currency"] == "142" and h["buyerIdType"] == "1" and h["orderType"] == "I"
    assert is_valid_id_number(h["buyerIdNumber"])
    assert [line["gnum"] for line in order.lines] == [str(n) for n in range(1, len(order.lines) + 1)]
    for line in order.lines:
        assert _d(line["totalPrice"]) == _d(line["price"]) * _d(line["qty"])
        assert _d(line["qty"]) > 0 and line["currency"] == "142"
    goods = sum(_d(line["totalPrice"]) for line in order.lines)
    assert _d(h["goodsValue"]) == goods
    assert _d(h["acturalPaid"]) == goods + _d(h["freight"]) + _d(h["taxTotal"]) - _d(h["discount"])
    assert _d(h["acturalPaid"]) <= 5000
    # tax: 9.1 % of goods + freight + insured fee; lines with consumption tax at their own rate
    base = goods + _d(h["freight"]) + order.meta["insuredFee"]
    gcodes = [p.gcode for p in order.meta["products"]]
    if not any(g in CONSUMPTION_TAX for g in gcodes):
        assert _d(h["taxTotal"]) == (base * Decimal("0.091")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    else:
        weighted = sum(_d(line["totalPrice"]) * combined_rate(CONSUMPTION_TAX.get(g, Decimal(0)))
                       for line, g in zip(order.lines, gcodes))
        assert _d(h["taxTotal"]) == (weighted * base / goods).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _check_code(code: str) -> None:
    assert (len(code) == 10 and is_customs_code(code)) or (len(code) == 18 and is_valid_uscc(code)), code


@pytest.mark.parametrize("seed", range(40))
def test_documents_keep_the_rules_inside_them(seed):
    b = MessageBuilder(seed)
    parties = b.parties()
    for role in ("ebp", "ebc", "pay", "logistics", "agent", "assure", "operator", "area"):
        party = getattr(parties, role)
        _check_code(party.code)
        assert party.name.endswith("有限公司") and len(party.dxp_id) == 16
    docs = b.declaration(parties, lines=seed % 6 + 1)
    _check_order(docs["order"])
    inv = docs["inventory"]
    h = inv.head
    assert is_valid_id_number(h["buyerIdNumber"]) and h["packNo"] == "1" and h["currency"] == "142"
    assert 0 < _d(h["netWeight"]) <= _d(h["grossWeight"])
    assert h["tradeMode"] in ("9610", "1210")
    if h["tradeMode"] == "9610":
        assert h["trafNo"] and h["voyageNo"] and h["billNo"]
    else:
        assert h["emsNo"] and h["areaCode"] == parties.area.code and h["country"] == "142"
        assert all(line.get("itemRecordNo") for line in inv.lines)
    for line in inv.lines:
        assert len(line["gcode"]) == 10 and line["gcode"].isdigit()
        assert ("unit2" in line) == ("qty2" in line)
        if "qty2" in line:
            assert _d(line["qty2"]) > 0
        assert _d(line["totalPrice"]) == _d(line["price"]) * _d(line["qty"])
    for code in (h["ebpCode"], h["ebcCode"], h["agentCode"], h["logisticsCode"], h["assureCode"]):
        _check_code(code)
    assert docs["waybill"].head["packNo"] == "1"


def test_freight_and_discount_are_inputs_and_derived_overrides_are_literal():
    b = MessageBuilder(3)
    parties = b.parties()
    order = b.order(parties, freight="25", discount="10", lines=2)
    _check_order(order)
    assert order.head["freight"] == "25.00" and order.head["discount"] == "10.00"
    pricey = b.order(parties, lines_overrides=[{"price": "6000", "qty": "1"}])
    assert pricey.lines[0]["totalPrice"] == "6000.00" and _d(pricey.head["acturalPaid"]) > 5000
    assert _d(pricey.head["goodsValue"]) == 6000
    bad = b.order(parties, acturalPaid="1.00", note=None, consigneeDistrict="330106")
    assert bad.head["acturalPaid"] == "1.00" and "note" not in bad.head
    assert list(bad.head) == [n for n in names("OrderHead") if n in bad.head]  # still in schema order
    gone = b.order(parties, payCode=None, payName=None, payTransactionId=None)
    assert "payCode" not in gone.head
    with pytest.raises(TypeError):
        b.order(parties, acturalpaid="1")
    inv = b.inventory(order, b.waybill(order, parties), parties, trade_mode="1210", lines_overrides=[{"qty": "1"}])
    assert inv.head["tradeMode"] == "1210" and inv.lines[0]["qty"] == "1"


# --- documents agree with each other (CEB.md §2) ---------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_declaration_documents_match(seed):
    b = MessageBuilder(seed)
    parties = b.parties()
    d = b.declaration(parties, lines=seed % 4 + 1)
    order, pay, bill, inv = d["order"].head, d["payment"].head, d["waybill"].head, d["inventory"].head
    assert pay["amountPaid"] == order["acturalPaid"]
    assert (pay["ebpCode"], pay["orderNo"]) == (order["ebpCode"], order["orderNo"])
    assert (pay["payerIdNumber"], pay["payerName"]) == (order["buyerIdNumber"], order["buyerName"])
    if "payTransactionId" in order:
        assert (pay["payCode"], pay["payTransactionId"]) == (order["payCode"], order["payTransactionId"])
    assert bill["orderNo"] == order["orderNo"]
    for key in ("consignee", "consigneeTelephone", "consigneeAddress"):
        assert bill[key] == order[key]
    assert (inv["ebpCode"], inv["ebcCode"], inv["orderNo"]) == (order["ebpCode"], order["ebcCode"], order["orderNo"])
    assert (inv["logisticsCode"], inv["logisticsNo"]) == (bill["logisticsCode"], bill["logisticsNo"])
    assert (inv["buyerIdNumber"], inv["buyerName"]) == (order["buyerIdNumber"], order["buyerName"])
    assert inv["freight"] == order["freight"] and inv["grossWeight"] == bill["weight"]
    if inv.get("billNo") and bill.get("billNo"):
        assert inv["billNo"] == bill["billNo"]
    assert len(d["inventory"].lines) == len(d["order"].lines)
    for ol, il in zip(d["order"].lines, d["inventory"].lines):
        assert (il["gnum"], il["gname"], il["qty"], il["price"], il["totalPrice"]) == (
            ol["gnum"], ol["itemName"], ol["qty"], ol["price"], ol["totalPrice"])


def test_cancel_refund_status_and_delivery_follow_their_sources():
    b = MessageBuilder(9)
    parties = b.parties()
    shipment = b.shipment()
    sets = [b.declaration(parties, lines=3, trade_mode="9610", shipment=shipment) for _ in range(3)]
    inv = sets[0]["inventory"]
    invt_no = b.invt_no(inv)
    assert len(invt_no) == 18 and invt_no[8] == "I"
    cancel = b.cancel(inv, parties, invt_no)
    assert cancel.head["appType"] == "1" and cancel.head["invtNo"] == invt_no
    assert cancel.head["buyerIdNumber"] == inv.head["buyerIdNumber"]
    refund = b.refund(inv, parties, invt_no)
    for rl, il in zip(refund.lines, inv.lines):
        assert (rl["gnum"], rl["gcode"], rl["gname"], rl["unit"]) == (il["gnum"], il["gcode"], il["gname"], il["unit"])
        assert _d(rl["qty"]) <= _d(il["qty"])
    status = b.waybill_status(sets[0]["waybill"], parties)
    assert status.head["logisticsNo"] == sets[0]["waybill"].head["logisticsNo"]
    assert status.head["logisticsStatus"] == "S" and status.head["appTime"] >= status.head["logisticsTime"]
    delivery = b.delivery([s["waybill"] for s in sets], parties)
    assert [line["logisticsNo"] for line in delivery.lines] == [s["waybill"].head["logisticsNo"] for s in sets]
    assert delivery.head["operatorCode"] == parties.operator.code
    assert {s["waybill"].head["billNo"] for s in sets} == {delivery.head["billNo"]} == {
        s["inventory"].head["billNo"] for s in sets}
    assert delivery.head["customsCode"] == inv.head["customsCode"] == shipment["site"][0]


# --- encodings and the envelope ---------------------------------------------------------------


def test_gb18030_round_trips_chinese_text(import_xsd):
    b = MessageBuilder(13)
    parties = b.parties()
    order = b.order(parties, lines=2)
    data = b.message("311", [order], sender=parties.ebp, encoding="GB18030")
    assert data.startswith(b'<?xml version="1.0" encoding="GB18030"?>')
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    root = etree.fromstring(data)
    assert root.findtext(f".//{C}buyerName") == order.head["buyerName"]
    assert root.findtext(f".//{C}itemName") == order.lines[0]["itemName"]
    assert root.findtext(f".//{C}copName") == parties.ebp.name
    _assert_valid(import_xsd, data)


def test_base_transfer_names_the_sender_and_subscribers_fit():
    b = MessageBuilder(14)
    parties = b.parties()
    data = b.message("411", [b.payment(b.order(parties), parties)], sender=parties.pay,
                     guid="0" * 8 + "-0000-4000-8000-" + "0" * 12, subscribers=[parties.ebp])
    root = etree.fromstring(data)
    assert root.get("guid") == "00000000-0000-4000-8000-000000000000" and root.get("version") == "1.0"
    bt = root.find(f"{C}BaseTransfer")
    assert [bt.findtext(f"{C}{n}") for n in ("copCode", "copName", "dxpMode", "dxpId")] == [
        parties.pay.code, parties.pay.name, "DXP", parties.pay.dxp_id]
    assert root.find(f"{C}BaseSubscribe/{C}dxpAddress").text == parties.ebp.dxp_id
    generated = etree.fromstring(b.message("411", [b.payment(b.order(parties), parties)], sender=parties.pay))
    guid = generated.get("guid")
    assert len(guid) == 36 and guid == guid.upper()
    overridden = etree.fromstring(build("621", 2, app_status="1"))
    assert {e.text for e in overridden.iter(f"{C}appStatus")} == {"1"}


def test_wrap_dxp_round_trips_and_validates():
    b = MessageBuilder(15)
    parties = b.parties()
    message = build("621", 15)
    from schemas.builder import wrap_dxp

    env = wrap_dxp(message, sender_id=parties.agent.dxp_id, msg_type="CEB621Message")
    assert env == wrap_dxp(message, sender_id=parties.agent.dxp_id, msg_type="CEB621Message")
    root = etree.fromstring(env)
    d = f"{{{DXP_NS}}}"
    assert root.tag == f"{d}DxpMsg" and root.get("ver") == "1.0"
    info = root.find(f"{d}TransInfo")
    assert [c.tag.removeprefix(d) for c in info] == ["CopMsgId", "SenderId", "ReceiverIds", "CreatTime", "MsgType"]
    assert info.findtext(f"{d}ReceiverIds/{d}ReceiverId") == "DXPEDCCEB0000002"
    assert info.findtext(f"{d}MsgType") == "CEB621Message"
    assert base64.b64decode(root.findtext(f"{d}Data")) == message
    assert signature.verify(etree.fromstring(base64.b64decode(root.findtext(f"{d}Data")))).ok
    other = b.wrap_dxp(message, sender_id=parties.agent.dxp_id, cop_msg_id="MSG-1")
    assert etree.fromstring(other).findtext(f"{d}TransInfo/{d}CopMsgId") == "MSG-1"
    if (OFFICIAL / "terminal.xsd").is_file():
        terminal = _official("terminal.xsd")
        _assert_valid(terminal, env)
        _assert_valid(terminal, other)
    project = _project_schema("dxp_schema")
    if project is not None:
        _assert_valid(project, env)


def test_parties_generate_accepts_a_seed_or_a_random():
    import random

    assert Parties.generate(5) == Parties.generate(random.Random(5))
    parties = Parties.generate(5)
    assert parties.assure in (parties.ebc, parties.agent, parties.logistics)
    assert len({p.name for p in (parties.ebp, parties.ebc, parties.pay, parties.logistics, parties.agent)}) == 5
