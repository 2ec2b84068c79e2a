"""Export intake (CEB.md §8): every export message accepted, stored and answered with its own receipt;
the §8.3 rules each refused naming the field and the code; customs' export receiver; the required
signatures; placeholders; who may transmit; and split filings held from the regulators until every
part is in."""

from __future__ import annotations

import pytest
from lxml import etree

from schemas.catalog import CEB_NS, EXPORT
from tests.fixtures.paths import REFERENCE

C = f"{{{CEB_NS}}}"
OFFICIAL_EXPORT = REFERENCE / "xsd" / "export.xsd"


def _official():
    if not OFFICIAL_EXPORT.is_file():
        return None
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(OFFICIAL_EXPORT), parser))


def docs_for(b, code: str, parties):
    decl = b.declaration(parties, order_type="E", statistics_flag="B", collection=True, with_transport=True)
    if code in ("303", "403", "505", "603"):
        return [decl[{"303": "order", "403": "collection", "505": "waybill", "603": "inventory"}[code]]]
    b.invt_no(decl["inventory"])
    if code == "605":
        return [b.cancel(decl["inventory"], parties)]
    if code == "607":
        return b.consolidation([decl], parties)
    if code == "507":
        return b.arrival([decl], parties)
    if code == "509":
        return b.departure([decl], parties)
    refund = b.refund(decl["inventory"], parties)
    if code == "213":
        return [refund]
    if code == "215":
        return [b.tally(refund, parties)]
    if code == "701":
        return b.summary([decl["inventory"]], parties)
    raise AssertionError(code)


def file(swx, firm, b, code, docs, **kw):
    from tests.fixtures.parties import party_of

    return swx.file(firm, b.message(code, docs, sender=party_of(firm), **kw))


def finding(r, code: str, field: str | None = None) -> dict:
    errors = r.json()["errors"]
    hits = [e for e in errors if e["code"] == code and (field is None or (e.get("path") or "").endswith(field))]
    assert hits, f"no {code} on {field}: {errors}"
    return hits[0]


@pytest.mark.parametrize("code", sorted(EXPORT))
def test_each_export_message_is_accepted_and_answered_with_its_receipt(swx, filer, export_builder, code):
    mt = EXPORT[code]
    b = export_builder
    r = file(swx, filer, b, code, docs_for(b, code, b.parties(foreign_platform=False)))
    assert r.status_code == 201, r.text
    answer = r.json()
    assert (answer["messageType"], answer["receiptType"]) == (mt.root, mt.receipt_root)
    doc = answer["documents"][0]
    assert doc["kind"] == mt.kind and doc["status"] == "2" and list(doc["key"]) == list(mt.key)
    stored = swx.http.get(r.headers["location"], headers=filer.auth).json()
    receipt = etree.fromstring(stored["receipts"][0]["xml"].encode())
    assert receipt.tag == f"{C}{mt.receipt_root}"
    assert receipt.findtext(f".//{C}returnStatus") == "2"
    official = _official()
    if official is not None:
        assert official.validate(receipt), official.error_log
    if code in ("507", "509", "603", "605", "607", "213", "215", "701"):
        assert len(doc["preNo"]) == 18


RULES = [
    ("303", "order", {"orderType": "I"}, "-301008", "orderType"),
    ("403", "collection", {"charge": "0"}, "-401009", "charge"),
    ("603", "inventory", {"tradeMode": "1239"}, "-621001", "tradeMode"),
    ("603", "inventory", {"ieFlag": "I"}, "-621001", "ieFlag"),
    ("603", "inventory", {"statisticsFlag": "C"}, "-621001", "statisticsFlag"),
    ("603", "inventory", {"tradeMode": "1210", "iacCode": None, "iacName": None, "emsNo": None}, "-621001", "iacCode"),
    ("603", "inventory", {"netWeight": "99999"}, "-621001", "netWeight"),
    ("603", "inventory", {"currency": "14"}, "-621001", None),
    ("603", "inventory", {"ebcCode": "91310000MA1K00000X"}, "-10102", "ebcCode"),
]


@pytest.mark.parametrize("code, kind, over, expected, field", RULES, ids=[f"{r[0]}-{next(iter(r[2]))}" for r in RULES])
def test_export_rules_name_the_field_and_the_code(swx, filer, export_builder, code, kind, over, expected, field):
    b = export_builder
    parties = b.parties()
    decl = b.declaration(parties, order_type="E", statistics_flag="B", collection=True)
    head = decl[kind].head
    for name, value in over.items():
        if value is None:
            head.pop(name, None)
        else:
            head[name] = value
    r = file(swx, filer, b, code, [decl[kind]])
    assert r.status_code == 422, r.text
    hit = finding(r, expected, field)
    assert hit.get("line") and hit.get("path")


def test_a_list_line_rules(swx, filer, export_builder):
    b = export_builder
    decl = b.declaration(b.parties(), order_type="B", lines=2)
    lines = decl["inventory"].lines
    lines[1]["gnum"] = "1"
    lines[0]["unit2"], lines[0]["qty2"] = "035", None
    r = file(swx, filer, b, "603", [decl["inventory"]])
    assert r.status_code == 422
    finding(r, "-621027", "gnum")
    finding(r, "-625009")


def test_transport_summary_and_return_rules(swx, filer, export_builder):
    b = export_builder
    parties = b.parties()
    decl = b.declaration(parties, order_type="E", statistics_flag="B")
    b.invt_no(decl["inventory"])
    (arrival,) = b.arrival([decl], parties, bill_only=True)
    arrival.head.pop("billNo", None)
    arrival.head["trafMode"] = "2"
    finding(file(swx, filer, b, "507", [arrival]), "-507001", "billNo")
    (departure,) = b.departure([decl], parties)
    departure.head["trafMode"], departure.head["voyageNo"] = "2", ""
    finding(file(swx, filer, b, "509", [departure]), "-509001", "voyageNo")
    (part,) = b.consolidation([decl], parties)
    part.head["msgSeqNo"], part.head["msgCount"] = "3", "2"
    finding(file(swx, filer, b, "607", [part]), "-607006", "msgSeqNo")
    (summary,) = b.summary([decl["inventory"]], parties)
    summary.head["startTime"] = "20260101000000"
    summary.head.pop("endTime", None)
    finding(file(swx, filer, b, "701", [summary]), "-701001", "endTime")
    refund = b.refund(decl["inventory"], parties)
    refund.head["country"] = "142"
    finding(file(swx, filer, b, "213", [refund]), "-625001", "country")
    refund = b.refund(decl["inventory"], parties)
    refund.head.pop("tradeMode", None)
    finding(file(swx, filer, b, "213", [refund]), "-625001", "tradeMode")


def test_required_signatures_and_the_export_receiver(swx, filer, export_builder):
    from tests.fixtures.parties import party_of

    b = export_builder
    decl = b.declaration(b.parties(), order_type="B")
    r = file(swx, filer, b, "603", [decl["inventory"]], sign=False)
    assert r.status_code == 422
    assert "must be signed" in finding(r, "-621029")["message"]
    # an unsigned order is fine (optional), but not one sent to the import receiver
    message = b.message("303", [decl["order"]], sender=party_of(filer))
    body = b.envelope(message, sender=party_of(filer))
    assert swx.file(filer, body).status_code == 201
    decl2 = b.declaration(b.parties(), order_type="B")
    wrong = b.envelope(b.message("303", [decl2["order"]], sender=party_of(filer)), sender=party_of(filer))
    wrong = wrong.replace(b"DXPEDCCEB0000003", b"DXPEDCCEB0000002")
    r = swx.file(filer, wrong)
    assert r.status_code == 422
    assert "export receiver DXPEDCCEB0000003" in finding(r, "2001")["message"]


def test_a_foreign_platform_order_is_keyed_by_its_seller(swx, filer, export_builder):
    b = export_builder
    parties = b.parties(foreign_platform=True)
    decl = b.declaration(parties, order_type="E", collection=True)
    assert decl["order"].head["ebpCode"] == "无"
    r = file(swx, filer, b, "303", [decl["order"]])
    assert r.status_code == 201, r.text
    assert r.json()["documents"][0]["key"] == {"ebcCode": decl["order"].head["ebcCode"], "orderNo": decl["order"].head["orderNo"]}
    view = swx.http.get(f"/v1/declarations/{decl['order'].head['ebcCode']}/{decl['order'].head['orderNo']}",
                        headers=swx.operator)
    assert view.status_code == 200, view.text
    assert view.json()["direction"] == "export" and "export_order" in view.json()["documents"]


def test_only_a_party_or_an_agent_transmits(swx, export_builder):
    b = export_builder
    carrier = swx.register(["logistics"])
    decl = b.declaration(b.parties(), order_type="B")
    r = file(swx, carrier, b, "303", [decl["order"]])
    assert r.status_code == 422
    assert "not a registered declaring agent" in finding(r, "-10101")["message"]


def _deliveries_of(swx, guids: set[str]) -> list[dict]:
    from tests.fixtures.processes import all_deliveries

    rows = all_deliveries(swx.http, swx.operator)
    return [d for d in rows if d["messageGuid"] in guids]


def test_a_split_arrival_reaches_the_regulators_only_when_its_last_part_is_in(swx, filer, export_builder):
    b = export_builder
    parties = b.parties()
    decls = [b.declaration(parties, order_type="B", shipment=b.shipment()) for _ in range(3)]
    parts = b.arrival(decls, parties, per_part=1)
    assert [p.head["msgSeqNo"] for p in parts] == ["1", "2", "3"] and parts[0].head["msgCount"] == "3"
    guids = set()
    for part in (parts[0], parts[2]):
        r = file(swx, filer, b, "507", [part])
        assert r.status_code == 201, r.text
        guids.add(r.json()["guid"])
    assert _deliveries_of(swx, guids) == []
    r = file(swx, filer, b, "507", [parts[1]])
    assert r.status_code == 201
    guids.add(r.json()["guid"])
    routed = _deliveries_of(swx, guids)
    assert {(d["messageGuid"], d["regulator"]) for d in routed} == {(g, reg) for g in guids for reg in ("customs", "inspection")}
