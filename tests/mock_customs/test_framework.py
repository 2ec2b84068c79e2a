"""The stand-in framework (mock_customs.base, mock_customs.app), through customs against a fake
window: at-least-once delivery, receipts through a flaky window, faults, delivery and admin auth,
unreadable and oversized bodies, and the four stand-ins mounted together."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from mock_customs.config import MockSettings
from tests.fixtures.mock_customs import DELIVERY, OPERATOR, FakeWindow, Harness, running, statuses


# ---------------------------------------------------------------------- at-least-once delivery
async def test_duplicate_delivery_is_processed_once(h: Harness) -> None:
    parties = h.builder.parties()
    order = h.builder.order(parties)
    body = h.body("311", order, parties)
    first, again = await h.post(body), await h.post(body, delivery="d-1")
    assert first.json() == {"received": 1, "duplicates": 0}
    assert again.status_code == 200 and again.json() == {"received": 0, "duplicates": 1}
    # The same document inside another message (another guid) is dropped too; its new neighbour is not.
    other = h.builder.order(parties)
    mixed = await h.post(h.body("311", [order, other], parties))
    assert mixed.json() == {"received": 1, "duplicates": 1}
    await h.wait_for(other.head["guid"], "120")
    await h.app.state.runtime.ctx.idle()
    assert statuses(h.window.for_guid(order.head["guid"])) == ["120"]
    state = (await h.admin("GET", "/_admin/state")).json()
    assert state["received"]["messages"] == 2 and state["received"]["duplicates"] == 2


async def test_a_repeated_delivery_is_counted_as_a_repeat(h: Harness) -> None:
    parties = h.builder.parties()
    body = h.body("311", h.builder.order(parties), parties)
    await h.post(body, delivery="d-7")
    assert (await h.post(body, delivery="d-7")).json() == {"received": 0, "duplicates": 1}
    received = (await h.admin("GET", "/_admin/state")).json()["received"]
    assert (received["repeats"], received["documents"], received["messages"]) == (1, 1, 1)


async def test_receipts_survive_a_flaky_window_in_order(h: Harness) -> None:
    h.window.fail_next = 3
    parties = h.builder.parties()
    orders = [h.builder.order(parties) for _ in range(3)]
    for o in orders:
        await h.send("311", o, parties)
    await h.wait_for(orders[-1].head["guid"], "120")
    assert [r["guid"] for r in h.window.returns()] == [o.head["guid"] for o in orders]
    assert h.app.state.runtime.ctx.receipts["retries"] >= 3

    h.window.refuse_next = 1  # a 409 is logged and dropped, and the sender moves on
    late = [h.builder.order(parties) for _ in range(2)]
    for o in late:
        await h.send("311", o, parties)
    await h.wait_for(late[1].head["guid"], "120")
    assert h.window.for_guid(late[0].head["guid"]) == []
    assert h.app.state.runtime.ctx.receipts["dropped"] == 1


# ---------------------------------------------------------------------- faults
async def test_faults_outage_errors_and_latency(h: Harness) -> None:
    parties = h.builder.parties()
    order = h.builder.order(parties)
    body = h.body("311", order, parties)
    assert (await h.admin("PUT", "/_admin/faults", json={"outage": True})).json()["outage"] is True
    assert (await h.post(body)).status_code == 503
    reg = await h.http.post("/registrations", json={"code": "X"}, headers={"Authorization": f"Bearer {DELIVERY}"})
    assert reg.status_code == 503
    assert (await h.admin("GET", "/_admin/state")).status_code == 200  # admin is never faulted

    r = await h.admin("PUT", "/_admin/faults", json={"outage": False, "errorRate": 1})
    assert r.json() == {"outage": False, "errorRate": 1.0, "latencyMs": 0}
    assert (await h.post(body)).status_code == 500

    await h.admin("PUT", "/_admin/faults", json={"errorRate": 0, "latencyMs": 150})
    started = time.monotonic()
    ok = await h.post(body)
    assert time.monotonic() - started >= 0.15
    assert ok.json() == {"received": 1, "duplicates": 0}  # the failed attempts recorded nothing
    assert (await h.admin("GET", "/_admin/faults")).json()["latencyMs"] == 150

    for bad in ({"errorRate": 1.5}, {"latencyMs": -1}, {"outage": "sometimes"}, {"surprise": 1}):
        assert (await h.admin("PUT", "/_admin/faults", json=bad)).status_code == 422


# ---------------------------------------------------------------------- auth and hostile bodies
async def test_delivery_and_admin_auth(h: Harness) -> None:
    parties = h.builder.parties()
    body = h.body("311", h.builder.order(parties), parties)
    assert (await h.post(body, token=None)).status_code == 401
    assert (await h.post(body, token="wrong")).status_code == 401
    r = await h.http.post("/registrations", json={"code": "X"}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    for method, path in (("GET", "/_admin/state"), ("GET", "/_admin/faults"), ("PUT", "/_admin/faults")):
        assert (await h.admin(method, path, token=None, json={})).status_code == 401
        assert (await h.admin(method, path, token=DELIVERY, json={})).status_code == 401
    assert h.window.receipts == []


async def test_admin_is_closed_without_an_operator_token(window: FakeWindow) -> None:
    async with running(window, operator_token=None, delivery_token=None) as h:
        assert (await h.admin("GET", "/_admin/state", token="anything")).status_code == 403
        parties = h.builder.parties()
        assert (await h.post(h.body("311", h.builder.order(parties), parties), token=None)).status_code == 200


@pytest.mark.parametrize("body, words", [
    (b"", "empty"),
    (b"<not-xml", "not well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "document type"),
    (b'<DxpMsg xmlns="http://www.chinaport.gov.cn/dxp"><Data>***</Data></DxpMsg>', "Base64"),
    (b'<DxpMsg xmlns="http://www.chinaport.gov.cn/dxp"><Data>' + base64.b64encode(b"<a/>") + b"</Data></DxpMsg>",
     "not a filed CEB message"),
    (b'<CEB816Message xmlns="http://www.chinaport.gov.cn/ceb" guid="X"/>', "not a filed CEB message"),
    (b'<CEB311Message xmlns="http://www.chinaport.gov.cn/ceb" guid="X"/>', "holds no Order"),
    (b"<a>" * 40 + b"</a>" * 40, "nested deeper"),
])
async def test_unreadable_bodies_are_400(h: Harness, body: bytes, words: str) -> None:
    r = await h.post(body)
    assert r.status_code == 400 and words in r.json()["detail"], r.text


async def test_oversized_body_is_413(window: FakeWindow) -> None:
    async with running(window, max_body_bytes=2048) as h:
        parties = h.builder.parties()
        r = await h.post(h.body("311", [h.builder.order(parties) for _ in range(5)], parties))
        assert r.status_code == 413


async def test_all_four_mounted_when_present(window: FakeWindow) -> None:
    for name in ("inspection", "tax", "fx"):
        pytest.importorskip(f"mock_customs.{name}")
    from mock_customs.app import create_app

    app = create_app(MockSettings(gateway_url=window.url, operator_token=OPERATOR))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock")
    async with app.router.lifespan_context(app), client as http:
        for name in ("customs", "inspection", "tax", "fx"):
            r = await http.get(f"/{name}/_health")
            assert r.json() == {"regulator": name, "status": "ok"}
