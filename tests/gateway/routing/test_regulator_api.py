"""What a real regulator does with the window: post its verdicts (checked against what it was sent),
and, in pull mode, read its inbox and confirm it."""

from __future__ import annotations

import base64

import httpx
import pytest
from lxml import etree

from schemas.catalog import CEB_NS, DXP_NS, FILED
from schemas.receipts import DocumentReturn, document_fields, receipt_xml
from tests.fixtures.parties import party_of
from tests.fixtures.server import spawn_swx


def regulator_key(swx, name: str) -> dict:
    r = swx.http.post(f"/v1/regulators/{name}/keys", headers=swx.operator)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['apiKey']}", "Content-Type": "application/xml"}


def verdict(code: str, head: dict, status: str, info: str) -> bytes:
    mtype = FILED[code]
    return receipt_xml(mtype, [DocumentReturn(document_fields(mtype, head, None), status, info)]).encode()


@pytest.fixture
def listed(swx, builder, filer):
    decl = builder.declaration(builder.parties())
    for code, kind in (("311", "order"), ("621", "inventory")):
        assert swx.file(filer, builder.message(code, decl[kind], sender=party_of(filer))).status_code == 201
    return decl


def test_a_verdict_on_what_was_routed_is_recorded_and_forwarded(swx, filer, listed):
    inspection = regulator_key(swx, "inspection")
    body = verdict("621", listed["inventory"].head, "500", "inspection: held for a closer look at line 1")
    r = swx.http.post("/v1/regulators/receipts", content=body, headers=inspection)
    assert r.status_code == 201, r.text
    (doc,) = r.json()["documents"]
    assert doc["kind"] == "inventory" and doc["status"] == "500" and filer.code in doc["forwardedTo"]
    again = swx.http.post("/v1/regulators/receipts", content=body, headers=inspection)
    assert again.status_code == 200 and again.json()["replay"] is True
    feed = swx.http.get("/v1/receipts", params={"limit": 500}, headers=filer.auth).json()["receipts"]
    assert any(x["from"] == "inspection" and x["returnStatus"] == "500" for x in feed)
    order = listed["order"].head
    state = swx.http.get(f"/v1/declarations/{order['ebpCode']}/{order['orderNo']}", headers=swx.operator).json()
    assert state["documents"]["inventory"]["verdicts"]["inspection"]["status"] in ("500", "399")


def test_a_verdict_in_a_dxp_envelope(swx, listed, builder):
    tax = regulator_key(swx, "inspection")
    inner = verdict("621", listed["inventory"].head, "399", "inspection: cleared")
    body = builder.wrap_dxp(inner, sender_id="DXPCIQ0000000001", receiver_id="DXPSWX0000000001")
    assert swx.http.post("/v1/regulators/receipts", content=body, headers=tax).status_code == 201


def test_a_verdict_on_what_was_not_routed_to_you_is_refused(swx, listed):
    fx = regulator_key(swx, "fx")  # lists go to customs, inspection and tax, not to fx
    r = swx.http.post("/v1/regulators/receipts", content=verdict("621", listed["inventory"].head, "399", "x"), headers=fx)
    assert r.status_code == 409 and "never routed to fx" in r.json()["detail"]
    inspection = regulator_key(swx, "inspection")
    unknown = {**listed["inventory"].head, "guid": "00000000-0000-4000-8000-000000000000"}
    r = swx.http.post("/v1/regulators/receipts", content=verdict("621", unknown, "399", "x"), headers=inspection)
    assert r.status_code == 409 and "00000000-0000-4000-8000-000000000000" in r.json()["detail"]


@pytest.mark.parametrize(("body", "words"), [
    (b"<nope", "not readable XML"),
    (b'<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="x" version="1.0"/>', "not a receipt"),
    (b'<ceb:CEB622Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="x" version="1.0"/>', "does not conform"),
])
def test_unreadable_verdicts_say_why(swx, body, words):
    r = swx.http.post("/v1/regulators/receipts", content=body, headers=regulator_key(swx, "customs"))
    assert r.status_code == 422 and words in r.json()["detail"], r.text


def test_only_regulators_post_verdicts(swx, filer, listed):
    body = verdict("621", listed["inventory"].head, "800", "released, honest")
    r = swx.http.post("/v1/regulators/receipts", content=body, headers={**filer.auth, "Content-Type": "application/xml"})
    assert r.status_code == 403


# --- pull mode ---------------------------------------------------------------------------------------

PULL_ROUTES = """
[messages]
"311" = ["customs"]
"411" = ["customs", "fx"]
"511" = ["customs"]
"513" = ["customs"]
"621" = ["customs", "inspection", "tax"]
"623" = ["customs"]
"625" = ["customs"]
"711" = ["customs"]
[regulators.customs]
mode = "push"
[regulators.inspection]
mode = "push"
[regulators.tax]
mode = "push"
[regulators.fx]
mode = "pull"
receiver_id = "DXPSAFE000000001"
"""


@pytest.fixture
def pull_swx(tmp_path, settings):
    """A swx whose fx regulator pulls its deliveries instead of receiving them."""
    routes = tmp_path / "routes.toml"
    routes.write_text(PULL_ROUTES)
    with spawn_swx(settings, tmp_path, SWX_ROUTES=str(routes)) as spawned:
        yield httpx.Client(base_url=spawned.url, timeout=30), spawned.operator


def test_a_pull_regulator_reads_its_inbox_and_confirms(pull_swx, builder):
    from schemas.builder import Parties, Party

    http, operator = pull_swx
    me = Party("3301965PUL", "拉取测试支付有限公司", "DXPENT3301965PUL")
    firm = http.post("/v1/enterprises", headers=operator, json={
        "code": me.code, "name": me.name, "dxpId": me.dxp_id,
        "roles": ["ebp", "ebc", "pay", "logistics", "agent", "assure", "operator"]}).json()
    auth = {"Authorization": f"Bearer {firm['apiKey']}", "Content-Type": "application/xml"}
    decl = builder.declaration(Parties(ebp=me, ebc=me, pay=me, logistics=me, agent=me, assure=me, operator=me))
    payment = decl["payment"]
    r = http.post("/v1/filings", content=builder.message("411", payment, sender=me), headers=auth)
    assert r.status_code == 201, r.text
    guid = r.json()["guid"]
    fx = {"Authorization": "Bearer " + http.post("/v1/regulators/fx/keys", headers=operator).json()["apiKey"]}
    assert http.get("/v1/regulators/customs/inbox", headers=fx).status_code == 403  # not fx's
    assert http.get("/v1/regulators/customs/inbox", headers=operator).status_code == 409  # customs is pushed to
    items = [i for i in http.get("/v1/regulators/fx/inbox", headers=fx).json()["items"] if i["messageGuid"] == guid]
    (item,) = items
    env = etree.fromstring(item["body"].encode())
    assert env.tag == f"{{{DXP_NS}}}DxpMsg" and env.findtext(f".//{{{DXP_NS}}}ReceiverId") == "DXPSAFE000000001"
    inner = etree.fromstring(base64.b64decode(env.findtext(f"{{{DXP_NS}}}Data")))
    assert inner.get("guid") == guid and inner.tag == f"{{{CEB_NS}}}CEB411Message"
    r = http.post("/v1/regulators/fx/ack", json={"ids": [item["id"]]}, headers=fx)
    assert r.status_code == 200 and r.json()["acknowledged"] == [item["id"]]
    assert all(i["messageGuid"] != guid for i in http.get("/v1/regulators/fx/inbox", headers=fx).json()["items"])
    d = next(x for x in http.get("/v1/deliveries", params={"regulator": "fx"}, headers=operator).json()["deliveries"]
             if x["id"] == item["id"])
    assert d["state"] == "delivered"
    # and answers like any regulator
    body = verdict("411", payment.head, "120", "fx: recorded")
    r = http.post("/v1/regulators/receipts", content=body, headers={**fx, "Content-Type": "application/xml"})
    assert r.status_code == 201, r.text
    d = next(x for x in http.get("/v1/deliveries", params={"regulator": "fx"}, headers=operator).json()["deliveries"]
             if x["id"] == item["id"])
    assert d["state"] == "acknowledged"


def test_a_receipt_answering_several_firms_documents_reaches_each_firm_with_only_its_own(swx, builder):
    from schemas.builder import Parties

    firms, orders = [], []
    for _ in range(2):
        firm = swx.register(["ebp", "ebc", "pay", "logistics", "agent", "assure"])
        me = party_of(firm)
        order = builder.order(Parties(ebp=me, ebc=me, pay=me, logistics=me, agent=me, assure=me, operator=me))
        assert swx.file(firm, builder.message("311", [order], sender=me)).status_code == 201
        firms.append(firm)
        orders.append(order.head)
    mtype = FILED["311"]
    both = receipt_xml(mtype, [DocumentReturn(document_fields(mtype, h, None), "120", "customs: received") for h in orders])
    r = swx.http.post("/v1/regulators/receipts", content=both.encode(), headers=regulator_key(swx, "customs"))
    assert r.status_code == 201, r.text
    assert [d["status"] for d in r.json()["documents"]] == ["120", "120"]
    for firm, own, other in ((firms[0], orders[0], orders[1]), (firms[1], orders[1], orders[0])):
        feed = swx.http.get("/v1/receipts", params={"limit": 500}, headers=firm.auth).json()["receipts"]
        (xml,) = [x["xml"] for x in feed if x["from"] == "customs" and etree.fromstring(both.encode()).get("guid") in x["xml"]]
        root = etree.fromstring(xml.encode())
        assert len(root) == 1 and root.findtext(f"{{{CEB_NS}}}OrderReturn/{{{CEB_NS}}}orderNo") == own["orderNo"]
        assert other["orderNo"] not in xml
