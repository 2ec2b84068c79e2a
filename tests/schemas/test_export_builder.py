"""The export builder makes valid, consistent CEB export messages (CEB.md §8)."""

from __future__ import annotations

import base64
import importlib
from decimal import Decimal

import pytest
from lxml import etree

from schemas import signature
from schemas.catalog import CEB_NS, DS_NS, DXP_NS, ENTERPRISE_FIELDS, EXPORT, PLACEHOLDERS
from schemas.export_builder import (
    EXPORT_RECEIVER,
    INDUSTRIES,
    MESSAGES,
    TRADE_MODES,
    ExportBuilder,
    ExportParties,
)
from schemas.fields import EXPORT_FIELDS, FIELDS, names
from schemas.identifiers import enterprise_code_problem
from tests.fixtures.paths import REFERENCE

OFFICIAL = REFERENCE / "xsd"
C = f"{{{CEB_NS}}}"
CODES = ("303", "403", "505", "507", "509", "603", "605", "607", "213", "215", "701", "792")
SEEDS = (1, 2, 3, 42, 2024, 31337)
# (orderType, tradeMode) pairs the builder must cover (§8.3)
MODES = (("E", "9610"), ("E", "1210"), ("B", "9710"), ("W", "9810"))
needs_official = pytest.mark.skipif(not (OFFICIAL / "export.xsd").is_file(), reason="official XSDs not present")


@pytest.fixture(scope="module")
def export_xsd() -> etree.XMLSchema:
    if not (OFFICIAL / "export.xsd").is_file():
        pytest.skip("official XSDs not present (../shared)")
    return etree.XMLSchema(etree.parse(str(OFFICIAL / "export.xsd")))


def _assert_valid(schema: etree.XMLSchema, data: bytes) -> None:
    doc = etree.fromstring(data)
    assert schema.validate(doc), f"{etree.QName(doc).localname}: {schema.error_log}"


def _flow(seed: int, *, lines: int = 2, per_part: int | None = None, industry: str | None = None):
    """One builder, its parties and a declaration of every (orderType, tradeMode) on one shipment."""
    b = ExportBuilder(seed)
    parties = b.parties(industry=industry)
    ship = b.shipment()
    decs = [b.declaration(parties, order_type=t, trade_mode=m, lines=lines + k, shipment=ship,
                          statistics_flag="AB"[k % 2]) for k, (t, m) in enumerate(MODES)]
    return b, parties, decs


def _docs(code: str, b: ExportBuilder, parties: ExportParties, decs, per_part: int | None = None):
    invs = [d["inventory"] for d in decs]
    summed = [inv for inv in invs if inv.head["statisticsFlag"] == "B"]  # A lists never reach a summary
    if code == "303":
        return [d["order"] for d in decs]
    if code == "403":
        return [b.collection(d["order"], parties) for d in decs]
    if code == "505":
        return [d["waybill"] for d in decs]
    if code == "603":
        return invs
    if code == "605":
        return [b.cancel(inv, parties) for inv in invs]
    if code == "607":
        return b.consolidation(decs, parties, per_part=per_part)
    if code == "507":
        return b.arrival(decs, parties, per_part=per_part)
    if code == "509":
        return b.departure(decs, parties, per_part=per_part)
    if code == "213":
        return [b.refund(inv, parties, partial=True) for inv in invs]
    if code == "215":
        return [b.tally(b.refund(inv, parties), parties) for inv in invs]
    if code == "701":
        return b.summary(summed, parties, per_part=per_part)
    return b.summary_result(b.summary(summed, parties), summed, per_part=per_part)


def build(code: str, seed: int, *, per_part: int | None = None, **flow) -> bytes:
    b, parties, decs = _flow(seed, **flow)
    docs = _docs(code, b, parties, decs, per_part)
    sender = None if code == "792" else parties.sender_for(code)
    return b.message(code, docs, sender=sender)


# --- schema validity ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("code", CODES)
def test_every_export_message_validates_against_the_official_xsd(export_xsd, code, seed):
    data = build(code, seed)
    _assert_valid(export_xsd, data)
    root = etree.fromstring(data)
    assert root.tag == f"{C}CEB{code}Message"
    signed = root.find(f"{{{DS_NS}}}Signature") is not None
    assert signed == (code != "792" and EXPORT[code].must_sign in ("always", "declared")), code


@pytest.mark.parametrize("industry", sorted(INDUSTRIES))
@pytest.mark.parametrize("code", CODES)
def test_every_industry_and_long_documents_validate(export_xsd, code, industry):
    _assert_valid(export_xsd, build(code, 11, industry=industry, lines=1))
    _assert_valid(export_xsd, build(code, 12, industry=industry, lines=9))


@pytest.mark.parametrize("code", ("507", "509", "607", "701", "792"))
def test_split_parts_validate_and_number_without_gaps(export_xsd, code):
    b, parties, decs = _flow(5, lines=3)
    docs = _docs(code, b, parties, decs, per_part=1 if code != "792" else 4)
    assert len(docs) > 1
    for doc in docs:
        _assert_valid(export_xsd, b.message(code, doc, sender=None if code == "792" else parties.sender_for(code)))
    assert [d.head["msgSeqNo"] for d in docs] == [str(n) for n in range(1, len(docs) + 1)]
    assert {d.head["msgCount"] for d in docs} == {str(len(docs))}
    key = "sumNo" if code == "792" else "copNo"
    assert len({d.head[key] for d in docs}) == 1
    for doc in docs:  # each part's lines number from 1 (792 lines have no gnum of their own)
        if code not in ("701", "792"):
            assert [line["gnum"] for line in doc.lines] == [str(n) for n in range(1, len(doc.lines) + 1)]


def test_hundred_lines_and_hundred_documents(export_xsd):
    b = ExportBuilder(9)
    parties = b.parties(industry="textiles")
    order = b.order(parties, lines=100)
    assert [line["gnum"] for line in order.lines] == [str(n) for n in range(1, 101)]
    _assert_valid(export_xsd, b.message("303", order, sender=parties.ebp))
    orders = [b.order(parties) for _ in range(100)]
    _assert_valid(export_xsd, b.message("303", orders, sender=parties.ebp))
    with pytest.raises(ValueError):
        b.order(parties, lines=101)
    with pytest.raises(ValueError):
        b.message("303", orders + [order], sender=parties.ebp)
    with pytest.raises(ValueError):
        b.message("505", order, sender=parties.logistics)
    with pytest.raises(ValueError):
        b.message("311", order, sender=parties.ebp)


def test_arrival_by_master_bill_alone_and_a_window_summary_validate(export_xsd):
    b, parties, decs = _flow(21)
    (arrival,) = b.arrival(decs, parties, bill_only=True)
    assert arrival.lines == [] and arrival.head["billNo"] == decs[0]["inventory"].meta["transport"]["billNo"]
    _assert_valid(export_xsd, b.message("507", arrival, sender=parties.operator))
    (window,) = b.summary([], parties, window=("20240101000000", "20240131235959"))
    assert window.lines == [] and window.head["startTime"] <= window.head["endTime"]
    _assert_valid(export_xsd, b.message("701", window, sender=parties.agent))
    with pytest.raises(ValueError):
        b.summary([], parties)
    with pytest.raises(ValueError):
        b.summary([], parties, window=("20240201000000", "20240101000000"))


@pytest.mark.parametrize("stage", ("built", "temp", "pre", "entered"))
def test_summary_results_of_every_stage_validate(export_xsd, stage):
    b, parties, decs = _flow(33)
    invs = [d["inventory"] for d in decs if d["inventory"].head["statisticsFlag"] == "B"]
    summary = b.summary(invs, parties)
    (result,) = b.summary_result(summary, invs, stage=stage)
    _assert_valid(export_xsd, b.message("792", result))
    head = result.head
    assert ("decTmpNo" in head, "decPreNo" in head, "entryId" in head) == {
        "built": (False, False, False), "temp": (True, False, False),
        "pre": (True, True, False), "entered": (True, True, True)}[stage]
    assert (result.lines == []) == (stage == "entered")  # a later 792 for the same declSeqNo may have none
    for key in ("sumNo", "declSeqNo") + (("entryId",) if stage == "entered" else ()):
        assert len(head[key]) == 18


def test_messages_validate_against_the_project_export_schema_too():
    try:
        loader = importlib.import_module("schemas.loader")
    except ImportError:  # pragma: no cover
        pytest.skip("schemas.loader missing")
    fn = getattr(loader, "export_schema", None)
    if not callable(fn):
        pytest.skip("schemas.loader.export_schema is not available yet")
    schema = fn()
    for code in CODES:
        for seed in SEEDS[:3]:
            _assert_valid(schema, build(code, seed))


@needs_official
def test_export_field_tables_match_the_official_xsd():
    xs = "{http://www.w3.org/2001/XMLSchema}"
    top = {e.get("name"): e for e in etree.parse(str(OFFICIAL / "export.xsd")).getroot().findall(f"{xs}element")}
    for node, fields in EXPORT_FIELDS.items():
        official = []
        for el in top[node].iter(f"{xs}element"):
            if el is top[node]:
                continue
            facets = {etree.QName(f).localname: f.get("value") for f in el.findall(f"{xs}simpleType/{xs}restriction/*")}
            base = el.find(f"{xs}simpleType/{xs}restriction")
            type_name = base.get("base") if base is not None else el.get("type")
            kind = {"xs:decimal": "dec", "xs:int": "int"}.get(type_name, "str")
            size = facets.get("length") or facets.get("maxLength")
            official.append((el.get("name"), el.get("minOccurs", "1") != "0",
                             int(size) if size and kind == "str" else None, "length" in facets, kind))
        assert [(f.name, f.required, f.max_len, f.exact, f.kind) for f in fields] == official, node


def test_export_tables_do_not_change_the_import_ones():
    assert names("OrderHead") == tuple(f.name for f in FIELDS["OrderHead"])
    assert "acturalPaid" in names("OrderHead") and "acturalPaid" not in names("OrderHead", "export")
    assert "statisticsFlag" in names("InventoryHead", direction="export")
    for code, mtype in EXPORT.items():  # every node an export message names has an export table
        for node in (mtype.head, mtype.lines):
            assert node is None or node in EXPORT_FIELDS, (code, node)


# --- the rules of §8.3 on the clean output -------------------------------------------------------


def _dec(value: str | None) -> Decimal:
    return Decimal(value or "0")


def _check_codes(head: dict[str, str]) -> None:
    for key in ENTERPRISE_FIELDS:
        value = head.get(key)
        if value is not None and value not in PLACEHOLDERS.values():
            assert enterprise_code_problem(value) is None, (key, value)
    for key in ("ownerCode", "iacCode"):
        if head.get(key) and head[key] not in PLACEHOLDERS.values():
            assert enterprise_code_problem(head[key]) is None, (key, head[key])


@pytest.mark.parametrize("seed", SEEDS)
def test_declarations_keep_the_export_rules(seed):
    _, _, decs = _flow(seed, lines=3)
    cop_nos = set()
    for d in decs:
        order, waybill, inv = d["order"], d["waybill"], d["inventory"]
        o, w, i = order.head, waybill.head, inv.head
        # order: totals and numbering
        assert [line["gnum"] for line in order.lines] == [str(n) for n in range(1, len(order.lines) + 1)]
        for line in order.lines:
            assert _dec(line["totalPrice"]) == _dec(line["qty"]) * _dec(line["price"])
            assert line["currency"] == o["currency"]
        assert _dec(o["goodsValue"]) == sum(_dec(line["totalPrice"]) for line in order.lines)
        assert _dec(o["freight"]) >= 0
        # list ↔ order: one to one
        assert i["tradeMode"] in TRADE_MODES[o["orderType"]]
        assert (i["orderNo"], i["ebpCode"], i["ebcCode"]) == (o["orderNo"], o["ebpCode"], o["ebcCode"])
        assert (i["logisticsCode"], i["logisticsNo"]) == (w["logisticsCode"], w["logisticsNo"])
        assert len(inv.lines) == len(order.lines)
        for ol, il in zip(order.lines, inv.lines):
            for key in ("gnum", "qty", "unit", "price", "totalPrice", "currency"):
                assert il[key] == ol[key], key
            assert il.get("itemName", ol["itemName"]) == ol["itemName"]
            assert il["gname"] == ol["itemName"]
            assert len(il["gcode"]) == 10 and il["gcode"].isdigit()
            assert ("unit2" in il) == ("qty2" in il)
            assert _dec(il["totalPrice"]) == _dec(il["qty"]) * _dec(il["price"])
            assert ("itemRecordNo" in il) == (i["tradeMode"] == "1210")
        # head facts
        assert i["ieFlag"] == "E" and i["statisticsFlag"] in ("A", "B")
        assert i["fFlag"] == i["iFlag"] == "3"
        assert 0 < _dec(i["netWeight"]) <= _dec(i["grossWeight"])
        assert _dec(w["grossWeight"]) > 0
        assert all(k in i for k in ("iacCode", "iacName", "emsNo")) == (i["tradeMode"] == "1210")
        assert i["copNo"] not in cop_nos
        cop_nos.add(i["copNo"])
        for head in (o, w, i):
            _check_codes(head)
        assert d["order"].kind == EXPORT["303"].kind and inv.kind == EXPORT["603"].kind
        # the receipt, where there is one (orderType E by default)
        assert ("collection" in d) == (o["orderType"] == "E")
        if "collection" in d:
            c = d["collection"].head
            assert 0 < _dec(c["charge"]) <= _dec(o["goodsValue"]) + _dec(o["freight"])
            assert (c["ebpCode"], c["ebcCode"], c["orderNo"], c["currency"]) == (
                o["ebpCode"], o["ebcCode"], o["orderNo"], o["currency"])
            assert c["accountingDate"] >= o["appTime"]
            _check_codes(c)


def test_collections_from_every_payer_stay_within_the_order():
    b = ExportBuilder(8)
    parties = b.parties()
    for payer in ("domestic", "foreign", "cash"):
        for order_type in TRADE_MODES:
            order = b.order(parties, order_type=order_type, lines=2)
            c = b.collection(order, parties, payer=payer).head
            assert 0 < _dec(c["charge"]) <= _dec(order.head["goodsValue"]) + _dec(order.head["freight"])
            assert ("payCode" in c) == (payer == "domestic")
            assert (c["payName"] == "现金支付") == (payer == "cash")
    with pytest.raises(ValueError):
        b.collection(order, parties, payer="barter")


@pytest.mark.parametrize("seed", SEEDS)
def test_transport_documents_follow_their_parcels(seed):
    b, parties, decs = _flow(seed)
    waybills = [d["waybill"].head["logisticsNo"] for d in decs]
    for d in decs:
        b.invt_no(d["inventory"])
    (wb,) = b.consolidation(decs, parties)
    assert [line["logisticsNo"] for line in wb.lines] == waybills
    assert [line["invtNo"] for line in wb.lines] == [d["inventory"].meta["invtNo"] for d in decs]
    assert all(len(line["invtNo"]) <= 20 and line["invtNo"][8] == "E" for line in wb.lines)
    assert _dec(wb.head["grossWeight"]) == sum(_dec(d["waybill"].head["grossWeight"]) for d in decs)
    assert wb.head["agentCode"] == parties.agent.code and wb.head["logisticsCode"] == parties.logistics.code
    (arrival,) = b.arrival(decs, parties)
    assert arrival.head["operatorCode"] == parties.operator.code and arrival.head["ieFlag"] == "E"
    assert [line["logisticsNo"] for line in arrival.lines] == waybills
    (dep,) = b.departure(decs, parties)
    assert [line["logisticsNo"] for line in dep.lines] == waybills
    assert dep.head["leaveTime"] <= dep.head["appTime"]
    if dep.head["trafMode"] != "6":  # only postal transport may leave them empty
        assert all(dep.head.get(k) for k in ("trafName", "voyageNo", "billNo"))
        assert dep.head["billNo"] == wb.head["billNo"] == arrival.head["billNo"]
    for doc in (wb, arrival, dep):
        _check_codes(doc.head)
    # the shipment's master bill is the one every list carries when it has transport data
    for d in decs:
        i = d["inventory"].head
        assert i.get("billNo") in (None, wb.head["billNo"])


@pytest.mark.parametrize("seed", SEEDS)
def test_returns_follow_the_original_list(seed):
    b, parties, decs = _flow(seed, lines=3)
    for d in decs:
        inv = d["inventory"]
        for kwargs in ({}, {"partial": True}, {"gnums": [2]}, {"inbound": True}):
            r = b.refund(inv, parties, **kwargs)
            h = r.head
            assert h["invtNo"] == b.invt_no(inv)
            assert h["tradeMode"] == ("1261" if inv.head["tradeMode"] == "1210" else "9661")
            assert h["ieFlag"] == "I" and h["country"] != "142"
            assert h["billNo"] == h["logisticsNo"]
            assert (h["ebpCode"], h["ebcCode"]) == (inv.head["ebpCode"], inv.head["ebcCode"])
            originals = {line["gnum"]: line for line in inv.lines}
            if "gnums" in kwargs:
                assert [line["gnum"] for line in r.lines] == ["2"]
            for line in r.lines:
                orig = originals[line["gnum"]]
                for key in ("gcode", "gname", "gmodel", "unit", "unit1"):
                    assert line[key] == orig[key]
                assert line.get("unit2") == orig.get("unit2") and ("qty2" in line) == ("unit2" in line)
                for key in ("qty", "qty1", "qty2"):
                    if key in line:
                        assert 0 < _dec(line[key]) <= _dec(orig[key])
            t = b.tally(r, parties).head
            assert (t["logisticsCode"], t["logisticsNo"]) == (h["logisticsCode"], h["logisticsNo"])
            assert t["operatorCode"] == parties.operator.code and t["ieFlag"] == "I" and len(t["coElNo"]) <= 20
    with pytest.raises(ValueError):
        b.refund(decs[0]["inventory"], parties, gnums=[99])


@pytest.mark.parametrize("item_name_flag", ("1", "0"))
def test_summary_and_its_result_map_every_list_line(item_name_flag):
    b, parties, decs = _flow(17, lines=3)
    invs = [d["inventory"] for d in decs if d["inventory"].head["statisticsFlag"] == "B"]
    with pytest.raises(ValueError):  # an A list is never summarised
        b.summary([d["inventory"] for d in decs], parties)
    (summary,) = b.summary(invs, parties, summary_flag="2", item_name_flag=item_name_flag)
    h = summary.head
    assert [line["invtNo"] for line in summary.lines] == [b.invt_no(inv) for inv in invs]
    assert (h["summaryFlag"], h["itemNameFlag"]) == ("2", item_name_flag)
    assert h["declAgentCode"] == parties.decl_agent.code and h["ebcCode"] == parties.ebc.code
    _check_codes(h)
    (result,) = b.summary_result(summary, invs)
    r = result.head
    assert r["sumNo"] == b.sum_no(summary) and len(r["opDate"]) == 17
    assert _dec(r["grossWeight"]) == sum(_dec(inv.head["grossWeight"]) for inv in invs)
    assert _dec(r["netWeight"]) == sum(_dec(inv.head["netWeight"]) for inv in invs)
    assert _dec(r["netWeight"]) <= _dec(r["grossWeight"])
    expected = [(b.invt_no(inv), inv.head["logisticsNo"], line["gnum"], line["gcode"]) for inv in invs for line in inv.lines]
    assert [(x["invtNo"], x["logisticsNo"], x["gnum"], x["gcode"]) for x in result.lines] == expected
    # one declaration item per goods code (and item name, with itemNameFlag 1), numbered 1…n
    seen: dict[tuple, str] = {}
    for x, inv_line in zip(result.lines, [line for inv in invs for line in inv.lines]):
        key = (x["gcode"], inv_line.get("itemName") or inv_line["gname"]) if item_name_flag == "1" else (x["gcode"],)
        assert seen.setdefault(key, x["gseqno"]) == x["gseqno"]
    assert sorted({int(v) for v in seen.values()}) == list(range(1, len(seen) + 1))


def test_cancel_names_the_list():
    b, parties, decs = _flow(4)
    inv = decs[0]["inventory"]
    c = b.cancel(inv, parties).head
    assert c["invtNo"] == b.invt_no(inv) and c["appType"] == "1"
    assert (c["agentCode"], c["ebcCode"], c["customsCode"]) == (inv.head["agentCode"], inv.head["ebcCode"], inv.head["customsCode"])
    assert b.cancel(inv, parties, "29912024E000000001").head["invtNo"] == "29912024E000000001"


def test_filer_numbers_are_unique_across_documents():
    b, parties, decs = _flow(6)
    docs = [d["inventory"] for d in decs] + [b.cancel(d["inventory"], parties) for d in decs]
    docs += b.consolidation(decs, parties) + b.arrival(decs, parties) + b.departure(decs, parties)
    docs += b.summary([d["inventory"] for d in decs if d["inventory"].head["statisticsFlag"] == "B"], parties)
    cop_nos = [d.head["copNo"] for d in docs]
    assert len(set(cop_nos)) == len(cop_nos)
    refunds = [b.refund(d["inventory"], parties) for d in decs]
    co_el = [r.head["coElNo"] for r in refunds] + [b.tally(r, parties).head["coElNo"] for r in refunds]
    assert len(set(co_el)) == len(co_el)


# --- parties --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_export_parties_are_valid_and_registrable(seed):
    b = ExportBuilder(seed)
    for _ in range(5):
        parties = b.parties()
        assert parties.industry in INDUSTRIES
        for product in parties.goods:
            assert len(product.gcode) == 10 and product.gcode.isdigit()
            assert len(product.gmodel) <= 250 and (product.unit2 is None) == (product.qty2 is None)
        for role in ("ebc", "pay", "logistics", "agent", "operator", "iac", "decl_agent"):
            assert enterprise_code_problem(getattr(parties, role).code) is None, role
        assert parties.ebp.code == "无" or enterprise_code_problem(parties.ebp.code) is None
        assert parties.owner.code == "NO" or enterprise_code_problem(parties.owner.code) is None
        codes = {r["code"] for r in parties.registrations()}
        assert "无" not in codes and "NO" not in codes
        assert parties.ebc.code in codes and parties.agent.code in codes


def test_a_foreign_platform_uses_the_placeholder_and_the_seller_files_the_order(export_xsd):
    b = ExportBuilder(77)
    parties = b.parties(industry="wigs", foreign_platform=True)
    assert parties.ebp.code == "无" and parties.foreign_platform
    d = b.declaration(parties, order_type="E", trade_mode="9610")
    assert d["order"].head["ebpCode"] == d["inventory"].head["ebpCode"] == d["collection"].head["ebpCode"] == "无"
    assert parties.sender_for("303") is parties.ebc
    _assert_valid(export_xsd, b.message("303", d["order"], sender=parties.sender_for("303")))
    assert all(line["gcode"].startswith("6704") for line in d["inventory"].lines)
    with pytest.raises(ValueError):
        b.parties(industry="spaceships")


# --- determinism, overrides ------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_same_seed_gives_identical_bytes_and_another_seed_other_data(code):
    assert build(code, 123) == build(code, 123)
    assert build(code, 123) != build(code, 124)


def test_overrides_replace_or_remove_fields_and_lines_recompute():
    b = ExportBuilder(3)
    parties = b.parties()
    order = b.order(parties, lines=2, freight="12.5", note=None, lines_overrides=[{"qty": 4, "price": "10"}])
    assert order.head["freight"] == "12.50" and "note" not in order.head
    assert order.lines[0]["totalPrice"] == "40.00"
    assert _dec(order.head["goodsValue"]) == sum(_dec(line["totalPrice"]) for line in order.lines)
    waybill = b.waybill(order, parties, ebcTelephone=None)
    inv = b.inventory(order, waybill, parties, statistics_flag="A", copNo="MYCOP1", lines_overrides=[{"barCode": "6901234567892"}])
    assert inv.head["copNo"] == "MYCOP1" and inv.head["statisticsFlag"] == "A"
    assert inv.lines[0]["barCode"] == "6901234567892"
    assert "ebcTelephone" not in waybill.head
    with pytest.raises(TypeError):
        b.order(parties, acturalPaid="1")  # an import field, not on an export order
    with pytest.raises(ValueError):
        b.order(parties, order_type="I")
    with pytest.raises(ValueError):
        b.inventory(order, waybill, parties, statistics_flag="C")


# --- signatures and envelope ------------------------------------------------------------------------


@pytest.mark.parametrize("code", [c for c in CODES if c != "792"])
def test_signatures_verify_and_sit_before_extend_message(export_xsd, code):
    b, parties, decs = _flow(13)
    docs = _docs(code, b, parties, decs)
    payload = etree.Element("Note")
    payload.text = "swx"
    data = b.message(code, docs, sender=parties.sender_for(code), sign=True, extend=("swxNote", "1.0", payload))
    _assert_valid(export_xsd, data)
    root = etree.fromstring(data)
    assert signature.verify(root).ok
    tags = [etree.QName(child).localname for child in root]
    assert tags[-2:] == ["Signature", "ExtendMessage"]
    unsigned = etree.fromstring(b.message(code, docs, sender=parties.sender_for(code), sign=False))
    assert unsigned.find(f"{{{DS_NS}}}Signature") is None


def test_arrival_is_signed_only_when_declared():
    b, parties, decs = _flow(14)
    arrival = b.arrival(decs, parties)
    declared = etree.fromstring(b.message("507", arrival, sender=parties.operator))
    saved = etree.fromstring(b.message("507", arrival, sender=parties.operator, app_status="1"))
    assert signature.verify(declared).ok
    assert saved.find(f"{{{DS_NS}}}Signature") is None
    assert saved.find(f"{C}Arrival/{C}ArrivalHead/{C}appStatus").text == "1"
    # 403 is optional: unsigned unless asked
    receipt = b.collection(decs[0]["order"], parties)
    assert etree.fromstring(b.message("403", receipt, sender=parties.pay)).find(f"{{{DS_NS}}}Signature") is None


def test_base_transfer_names_the_sender_and_792_has_none(export_xsd):
    b, parties, decs = _flow(15)
    root = etree.fromstring(b.message("603", [d["inventory"] for d in decs], sender=parties.agent, subscribers=[parties.ebc]))
    bt = root.find(f"{C}BaseTransfer")
    assert (bt.findtext(f"{C}copCode"), bt.findtext(f"{C}dxpId")) == (parties.agent.code, parties.agent.dxp_id)
    assert root.find(f"{C}BaseSubscribe/{C}dxpAddress").text == parties.ebc.dxp_id
    invs = [d["inventory"] for d in decs if d["inventory"].head["statisticsFlag"] == "B"]
    result = etree.fromstring(b.message("792", b.summary_result(b.summary(invs, parties), invs), sender=parties.agent))
    assert result.find(f"{C}BaseTransfer") is None and result.find(f"{{{DS_NS}}}Signature") is None
    with pytest.raises(TypeError):
        b.message("603", invs, sender=None)


def test_envelope_goes_to_the_export_receiver():
    b, parties, decs = _flow(16)
    message = b.message("603", decs[0]["inventory"], sender=parties.agent)
    env = etree.fromstring(b.envelope(message, sender=parties.agent))
    d = f"{{{DXP_NS}}}"
    assert env.findtext(f"{d}TransInfo/{d}ReceiverIds/{d}ReceiverId") == EXPORT_RECEIVER == "DXPEDCCEB0000003"
    assert env.findtext(f"{d}TransInfo/{d}SenderId") == parties.agent.dxp_id
    assert env.findtext(f"{d}TransInfo/{d}MsgType") == "CEB603Message"
    assert base64.b64decode(env.findtext(f"{d}Data")) == message
    if (OFFICIAL / "terminal.xsd").is_file():
        _assert_valid(etree.XMLSchema(etree.parse(str(OFFICIAL / "terminal.xsd"))), etree.tostring(env))
    from schemas.loader import dxp_schema
    _assert_valid(dxp_schema(), etree.tostring(env))


def test_every_export_code_has_a_builder_kind():
    assert set(MESSAGES) == set(EXPORT) | {"792"}
    assert set(CODES) == set(MESSAGES)
