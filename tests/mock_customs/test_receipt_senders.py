"""Receipts under load: the senders post receipts about different documents side by side and one
document's receipts in turn, probe a failing window one receipt at a time, and are not held up by
slow registry reads."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from lxml import etree

from mock_customs.app import create_regulator_app
from mock_customs.config import MockSettings
from mock_customs.customs import Customs
from schemas.builder import MessageBuilder
from tests.fixtures.mock_customs import DELIVERY, KEY, Harness, _assert_in_turn, _seeds
from tests.fixtures.server import serving


# ---------------------------------------------------------------------- receipts under load
class SlowWindow:
    """A window that takes ``delay`` seconds over each receipt post and ``registry_delay`` over each
    registry read, noting when every post began and ended; it can answer 503 until ``down_until``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delay = 0.0
        self.registry_delay = 0.0
        self.down_until = 0.0
        self.posts: list[tuple[float, float, bytes]] = []  # (began, ended, body), in the order taken
        self.refused = 0
        self.in_flight = self.most = 0
        self.url = ""
        app = FastAPI()

        @app.post("/v1/regulators/receipts")
        async def receipts(request: Request) -> Response:
            body = await request.body()
            began = time.monotonic()
            if began < self.down_until:
                with self.lock:
                    self.refused += 1
                return Response(status_code=503)
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
            await asyncio.sleep(self.delay)
            with self.lock:
                self.in_flight -= 1
                self.posts.append((began, time.monotonic(), body))
            return Response(status_code=201)

        @app.get("/v1/registry/enterprises/{code}")
        async def registry(code: str) -> Response:
            await asyncio.sleep(self.registry_delay)
            return Response(status_code=404)

        self.app = app

    def reset(self, *, delay: float = 0.0, registry_delay: float = 0.0) -> None:
        with self.lock:
            self.posts.clear()
            self.delay, self.registry_delay, self.down_until = delay, registry_delay, 0.0
            self.refused = self.in_flight = self.most = 0

    def taken(self) -> list[tuple[float, float, dict[str, str]]]:
        """(began, ended, return node fields) of every return node taken, in the order taken."""
        with self.lock:
            posts = list(self.posts)
        out = []
        for began, ended, body in posts:
            for node in etree.fromstring(body):
                out.append((began, ended, {etree.QName(c).localname: c.text or "" for c in node}))
        return out


@pytest.fixture(scope="module")
def slow_window() -> Any:
    fake = SlowWindow()
    with serving(fake.app, lifespan="off") as fake.url:
        yield fake


def _order_receipt(guid: str, status: str = "120") -> str:
    from schemas.catalog import FILED
    from schemas.receipts import DocumentReturn, receipt_xml

    return receipt_xml(FILED["311"], [DocumentReturn({"guid": guid, "ebpCode": "E1", "orderNo": guid}, status, "ok")])


async def test_receipts_for_different_documents_go_out_together_one_documents_in_turn(slow_window: SlowWindow) -> None:
    from mock_customs.base import Context

    delay = 0.3
    slow_window.reset(delay=delay)
    ctx = Context("customs", MockSettings(gateway_url=slow_window.url, keys={"customs": KEY}, senders=16))
    try:
        started = time.monotonic()
        # One document's 120, 399, 800 queued among twelve receipts about twelve other documents.
        await ctx.send_receipt(_order_receipt("LIST-1", "120"))
        for i in range(6):
            await ctx.send_receipt(_order_receipt(f"DOC-{i}"))
        await ctx.send_receipt(_order_receipt("LIST-1", "399"))
        for i in range(6, 12):
            await ctx.send_receipt(_order_receipt(f"DOC-{i}"))
        await ctx.send_receipt(_order_receipt("LIST-1", "800"))
        await asyncio.wait_for(ctx.idle(), 10)
        elapsed = time.monotonic() - started
        taken = slow_window.taken()
        others = [p for p in taken if p[2]["guid"].startswith("DOC-")]
        assert len(others) == 12 and len(taken) == 15
        # Twelve posts of 0.3 s each are through in about the time of one (one at a time: 3.6 s) ...
        assert max(p[1] for p in others) - started < 1.2, [round(p[1] - started, 2) for p in others]
        assert slow_window.most >= 12
        # ... while the document's three went one after the other: about 3 × 0.3 s in all.
        _assert_in_turn([p for p in taken if p[2]["guid"] == "LIST-1"], ["120", "399", "800"])
        assert 3 * delay <= elapsed < 3 * delay + 1.0
        assert ctx.sender_state() == {"queued": 15, "sent": 15, "dropped": 0, "retries": 0, "pending": 0,
                                      "failing": 0, "senders": 16}
    finally:
        await ctx.stop()


async def test_customs_keeps_each_lists_receipts_in_order_with_no_step_delay(slow_window: SlowWindow) -> None:
    slow_window.reset(delay=0.05)
    settings = MockSettings(gateway_url=slow_window.url, keys={"customs": KEY}, delivery_token=DELIVERY,
                            match_wait=5.0, step_delay=0.0, senders=8)
    app = create_regulator_app(Customs, settings)
    builder = MessageBuilder(seed=next(_seeds))
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://customs", timeout=30) as http:
        h = Harness(app, http, None, builder)  # type: ignore[arg-type]
        decls = []
        for _ in range(6):
            parties = builder.parties()
            decl = builder.declaration(parties)
            await h.declare(decl, parties)
            decls.append(decl)
        await asyncio.wait_for(app.state.runtime.ctx.idle(), 15)
    taken = slow_window.taken()
    assert len(taken) == 6 * 6  # 120 for each of the four documents, then 399 and 800
    for decl in decls:
        guid = decl["inventory"].head["guid"]
        _assert_in_turn([p for p in taken if p[2]["guid"] == guid], ["120", "399", "800"])
    assert slow_window.most > 1


async def test_a_failing_window_gets_one_receipt_at_a_time_oldest_first(slow_window: SlowWindow) -> None:
    from mock_customs.base import Context

    slow_window.reset()
    slow_window.down_until = time.monotonic() + 0.6
    ctx = Context("customs", MockSettings(gateway_url=slow_window.url, keys={"customs": KEY}, senders=8,
                                          receipt_backoff=0.02, receipt_backoff_max=0.04))
    try:
        guids = [f"OUT-{i}" for i in range(8)]
        for guid in guids:
            await ctx.send_receipt(_order_receipt(guid))
        await asyncio.wait_for(ctx.idle(), 10)
        # Eight senders each retrying every 10–40 ms would knock ~100 times in 0.6 s; one probe, ~25.
        assert 8 <= slow_window.refused < 50, slow_window.refused
        taken = [p[2]["guid"] for p in slow_window.taken()]
        failed_first = [g for g in guids if g in taken]
        assert sorted(taken) == sorted(guids) and taken == failed_first  # through in the order queued
        state = ctx.sender_state()
        assert state["sent"] == 8 and state["failing"] == 0 and state["retries"] == slow_window.refused
    finally:
        await ctx.stop()


async def test_slow_registry_reads_hold_up_no_other_delivery(slow_window: SlowWindow) -> None:
    slow_window.reset(registry_delay=0.8)
    settings = MockSettings(gateway_url=slow_window.url, keys={"customs": KEY}, delivery_token=DELIVERY,
                            match_wait=5.0, step_delay=0.0)
    app = create_regulator_app(Customs, settings)
    builder = MessageBuilder(seed=next(_seeds))
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://customs", timeout=30) as http:
        h = Harness(app, http, None, builder)  # type: ignore[arg-type]
        parties, other = builder.parties(), builder.parties()
        decl = builder.declaration(parties)
        listing = asyncio.create_task(h.send("621", decl["inventory"], parties))  # reads its firms' ratings
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await h.send("311", builder.order(other), other)  # another delivery, meanwhile
        assert time.monotonic() - started < 0.5
        assert not listing.done()
        await listing
        # Two lists waiting: a delivery re-checks only the lists it can complete.
        second = builder.declaration(parties)
        await h.send("621", second["inventory"], parties)
        customs: Customs = app.state.runtime.regulator
        assert len(customs.waiting) == 4
        await h.declare(decl, parties, order=("waybill", "payment", "order"))
        await asyncio.wait_for(app.state.runtime.ctx.idle(), 10)
        assert customs.lists[(decl["inventory"].head["ebcCode"], decl["inventory"].head["orderNo"])].state == "released"
        assert customs.lists[(second["inventory"].head["ebcCode"], second["inventory"].head["orderNo"])].state == "waiting"
        assert len(customs.waiting) == 2
        await h.declare(second, parties, order=("order", "payment", "waybill"))
        await asyncio.wait_for(app.state.runtime.ctx.idle(), 10)
        assert customs.waiting == {}
        assert {c.state for c in customs.lists.values()} == {"released"}
