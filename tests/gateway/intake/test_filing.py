"""Filing: every import message type accepted, stored and answered; replays, conflicts and statuses."""

from __future__ import annotations

import concurrent.futures

import pytest
from lxml import etree

from schemas.catalog import CEB_NS, IMPORT
from schemas.loader import ceb_schema
from tests.fixtures.parties import party_of


def _docs_for(builder, code: str, parties):
    decl = builder.declaration(parties, lines=2)
    if code == "311":
        return [decl["order"]]
    if code == "411":
        return [decl["payment"]]
    if code == "511":
        return [decl["waybill"]]
    if code == "513":
        return [builder.waybill_status(decl["waybill"], parties)]
    if code == "621":
        return [decl["inventory"]]
    invt_no = builder.invt_no(decl["inventory"])
    if code == "623":
        return [builder.cancel(decl["inventory"], parties, invt_no)]
    if code == "625":
        return [builder.refund(decl["inventory"], parties, invt_no)]
    if code == "711":
        return [builder.delivery([decl["waybill"]], parties)]
    raise AssertionError(code)


def _receipt_root(xml_bytes: bytes) -> etree._Element:
    root = etree.fromstring(xml_bytes)
    assert ceb_schema().validate(root), ceb_schema().error_log
    return root


@pytest.mark.parametrize("code", sorted(IMPORT))
def test_each_message_type_is_accepted_stored_and_answered(swx, filer, builder, code):
    mt = IMPORT[code]
    body = builder.message(code, _docs_for(builder, code, builder.parties()), sender=party_of(filer))
    r = swx.file(filer, body)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["messageType"] == mt.root and answer["status"] == "accepted"
    assert answer["receiptType"] == mt.receipt_root
    doc = answer["documents"][0]
    assert doc["kind"] == mt.kind and doc["version"] == 1 and doc["status"] == "2"
    assert list(doc["key"]) == list(mt.key)
    assert r.headers["location"] == f"/v1/filings/{answer['guid']}"

    stored = swx.http.get(r.headers["location"], headers=filer.auth).json()
    assert stored["status"] == "accepted" and stored["documents"][0]["key"] == doc["key"]
    assert stored["receipts"][0]["receiptType"] == mt.receipt_root
    receipt = _receipt_root(stored["receipts"][0]["xml"].encode())
    assert receipt.tag == f"{{{CEB_NS}}}{mt.receipt_root}"
    assert receipt.findtext(f".//{{{CEB_NS}}}returnStatus") == "2"


def test_many_documents_in_one_message(swx, filer, builder):
    parties = builder.parties()
    orders = [builder.order(parties, lines=3) for _ in range(100)]
    r = swx.file(filer, builder.message("311", orders, sender=party_of(filer)))
    assert r.status_code == 201, r.text
    assert [d["index"] for d in r.json()["documents"]] == list(range(1, 101))


def test_xml_answer_is_the_ceb_receipt(swx, filer, builder):
    parties = builder.parties()
    decl = builder.declaration(parties)
    r = swx.file(filer, builder.message("621", [decl["inventory"]], sender=party_of(filer)), accept="application/xml")
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/xml")
    root = _receipt_root(r.content)
    assert root.tag == f"{{{CEB_NS}}}CEB622Message"
    ret = root.find(f"{{{CEB_NS}}}InventoryReturn")
    assert len(ret.findtext(f"{{{CEB_NS}}}preNo")) == 18
    assert ret.findtext(f"{{{CEB_NS}}}guid") == decl["inventory"].head["guid"]


def test_saved_message_gets_status_1(swx, filer, builder):
    order = builder.order(builder.parties())
    r = swx.file(filer, builder.message("311", [order], sender=party_of(filer), app_status="1"))
    assert r.status_code == 201
    assert r.json()["documents"][0]["status"] == "1"


def test_identical_resubmission_returns_the_first_answer(swx, filer, builder):
    body = builder.message("311", [builder.order(builder.parties())], sender=party_of(filer))
    first = swx.file(filer, body)
    feed_before = swx.http.get("/v1/receipts", headers=filer.auth, params={"limit": 500}).json()["next"]
    again = swx.file(filer, body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    later = swx.http.get("/v1/receipts", headers=filer.auth, params={"after": feed_before}).json()["receipts"]
    assert [x for x in later if x["from"] == "swx"] == []  # (customs' own verdict on it may come meanwhile)
    xml_again = swx.file(filer, body, accept="application/xml")
    assert xml_again.status_code == 201 and b"CEB312Message" in xml_again.content


def test_concurrent_identical_resubmissions_store_once(swx, filer, builder):
    body = builder.message("311", [builder.order(builder.parties())], sender=party_of(filer))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: swx.file(filer, body), range(8)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["receivedAt"] for a in answers}) == 1
    guid = answers[0].json()["guid"]
    assert len(swx.http.get(f"/v1/filings/{guid}", headers=filer.auth).json()["receipts"]) == 1


def test_same_guid_different_content_is_409(swx, filer, builder):
    parties = builder.parties()
    guid = builder.guid()
    first = builder.message("311", [builder.order(parties)], sender=party_of(filer), guid=guid)
    second = builder.message("311", [builder.order(parties)], sender=party_of(filer), guid=guid)
    assert swx.file(filer, first).status_code == 201
    r = swx.file(filer, second)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert guid in r.json()["detail"]


def test_versions_are_kept(swx, filer, builder):
    parties = builder.parties()
    order = builder.order(parties)
    assert swx.file(filer, builder.message("311", [order], sender=party_of(filer))).status_code == 201
    changed = builder.order(parties, order_no=order.head["orderNo"], appType="2")
    r = swx.file(filer, builder.message("311", [changed], sender=party_of(filer)))
    assert r.status_code == 201, r.text
    assert r.json()["documents"][0]["version"] == 2
    first_guid = swx.http.get("/v1/receipts", headers=filer.auth, params={"limit": 500})  # feed still has both
    assert first_guid.status_code == 200
    stored = swx.http.get(f"/v1/filings/{r.json()['guid']}", headers=filer.auth).json()
    assert stored["documents"][0]["version"] == 2 and stored["documents"][0]["current"]["version"] == 2


def test_envelope_and_gb18030(swx, filer, builder):
    order = builder.order(builder.parties())
    message = builder.message("311", [order], sender=party_of(filer), encoding="GB18030")
    assert b'encoding="GB18030"' in message
    wrapped = builder.wrap_dxp(message, sender_id=filer.dxp_id, msg_type="CEB311Message")
    r = swx.file(filer, wrapped)
    assert r.status_code == 201, r.text
    stored = swx.http.get(f"/v1/filings/{r.json()['guid']}", headers=filer.auth).json()
    assert stored["documents"][0]["key"]["orderNo"] == order.head["orderNo"]


def test_gbk_declared_encoding_is_honoured(swx, filer, builder):
    order = builder.order(builder.parties(), buyerName="张三")
    message = builder.message("311", [order], sender=party_of(filer), encoding="GBK")
    r = swx.file(filer, message, path="/v1/validate")
    assert r.status_code == 200 and r.json()["valid"], r.text


def test_rejection_is_kept_and_visible(swx, filer, builder):
    order = builder.order(builder.parties(), acturalPaid="1.00000")
    body = builder.message("311", [order], sender=party_of(filer))
    r = swx.file(filer, body)
    assert r.status_code == 422
    guid = r.json()["guid"]
    seen = swx.http.get(f"/v1/filings/{guid}", headers=filer.auth).json()
    assert seen["status"] == "rejected"
    assert seen["rejections"][0]["errors"][0]["code"] == "-301008"
    feed = swx.http.get("/v1/receipts", headers=filer.auth, params={"limit": 500}).json()["receipts"]
    mine = [x for x in feed if x.get("messageGuid") == guid]
    assert mine and mine[0]["returnStatus"] == "-301008"
    swx.file(filer, body)  # the same refused content again is not kept twice
    assert len(swx.http.get(f"/v1/filings/{guid}", headers=filer.auth).json()["rejections"]) == 1


def test_receipts_feed_pages_with_a_cursor(swx, builder):
    firm = swx.register(["ebp", "ebc"])
    for _ in range(5):
        assert swx.file(firm, builder.message("311", [builder.order(builder.parties())], sender=party_of(firm))).status_code == 201
    seen, after = [], 0
    while True:
        page = swx.http.get("/v1/receipts", headers=firm.auth, params={"after": after, "limit": 2}).json()
        if not page["receipts"]:
            break
        seen += [(x["id"], x["from"]) for x in page["receipts"]]
        after = page["next"]
    assert len([i for i, by in seen if by == "swx"]) == 5 and seen == sorted(seen)  # customs' verdicts come too
    for x in swx.http.get("/v1/receipts", headers=firm.auth).json()["receipts"]:
        assert _receipt_root(x["xml"].encode()).tag == f"{{{CEB_NS}}}CEB312Message"


def test_content_type_must_be_xml(swx, filer, builder):
    body = builder.message("311", [builder.order(builder.parties())], sender=party_of(filer))
    r = swx.http.post("/v1/filings", content=body, headers={**filer.auth, "Content-Type": "application/json"})
    assert r.status_code == 415
    r = swx.http.post("/v1/filings", content=body, headers={**filer.auth, "Content-Type": "text/xml; charset=utf-8"})
    assert r.status_code == 201


def test_malformed_xml_gets_400_and_ceb900(swx, filer):
    r = swx.file(filer, b"<ceb:CEB311Message xmlns:ceb='http://www.chinaport.gov.cn/ceb'>", accept="application/xml")
    assert r.status_code == 400
    root = _receipt_root(r.content)
    assert root.findtext(f".//{{{CEB_NS}}}returnStatus") == "-0001"


def test_schema_failure_lists_every_finding_with_path_and_line(swx, filer, builder):
    order = builder.order(builder.parties(), ebpName="x" * 101, goodsValue="abc")
    r = swx.file(filer, builder.message("311", [order], sender=party_of(filer)))
    assert r.status_code == 422
    errors = r.json()["errors"]
    schema = [e for e in errors if e["layer"] == "schema"]
    assert {e["code"] for e in schema} == {"0002"}
    fields = {e["path"].rsplit("/", 1)[-1] for e in schema}
    assert {"ceb:ebpName", "ceb:goodsValue"} <= fields
    assert all(isinstance(e["line"], int) and e["document"].startswith("Order[1]") for e in schema)


def test_validate_stores_nothing(swx, filer, builder):
    order = builder.order(builder.parties())
    body = builder.message("311", [order], sender=party_of(filer))
    r = swx.file(filer, body, path="/v1/validate")
    assert r.status_code == 200 and r.json() == {"valid": True, "messageType": "CEB311Message", "errors": []}
    assert swx.file(filer, body).status_code == 201  # the key was still free
    again = swx.file(filer, body, path="/v1/validate").json()
    assert not again["valid"] and again["errors"][0]["code"] == "-301010"


def test_foreign_root_is_a_schema_finding(swx, filer):
    body = b'<x:Order xmlns:x="urn:other"/>'
    r = swx.file(filer, body)
    assert r.status_code == 422
    assert r.json()["errors"][0]["layer"] == "schema"
    receipt = swx.file(filer, body, path="/v1/validate").json()
    assert receipt["valid"] is False and receipt["messageType"] is None


def test_receipt_types_are_not_filed(swx, filer, builder):
    body = (
        b'<ceb:CEB312Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="%s" version="1.0"/>' % builder.guid().encode()
    )
    r = swx.file(filer, body)
    assert r.status_code == 422
    assert "not a message firms file" in r.json()["errors"][0]["message"]
