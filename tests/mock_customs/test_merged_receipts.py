"""Merged receipt messages: receipts ready together go out in few valid messages (capped by the merge
setting), one document's stay in turn, a refused merged message is split, tax bills merge into one
CEB816, and customs steps falling due together go out together."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from lxml import etree

from mock_customs.app import create_regulator_app
from mock_customs.config import MockSettings
from mock_customs.customs import Customs
from schemas.builder import MessageBuilder
from schemas.loader import ceb_schema
from tests.fixtures.mock_customs import DELIVERY, KEY, C, Harness, _assert_in_turn, _seeds
from tests.fixtures.server import serving


# ---------------------------------------------------------------------- merged receipt messages
class StrictWindow:
    """A window that takes receipt messages as the real one does — whole or not at all: ``422`` for one
    that fails the CEB schema, ``409`` for one with a node about a document it does not know (a guid
    or invtNo starting ``BAD``) — taking ``delay`` seconds over each post and noting when it began
    and ended."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delay = 0.0
        self.posts: list[tuple[float, float, int, bytes]] = []  # (began, ended, status, body), as answered
        self.url = ""
        app = FastAPI()

        @app.post("/v1/regulators/receipts")
        async def receipts(request: Request) -> Response:
            body = await request.body()
            began = time.monotonic()
            await asyncio.sleep(self.delay)
            root = etree.fromstring(body)
            if not ceb_schema().validate(root):
                status = 422
            elif any((node.findtext(f"{C}guid") or node.findtext(f"{C}TaxHeadRd/{C}invtNo") or "").startswith("BAD")
                     for node in root):
                status = 409
            else:
                status = 201
            with self.lock:
                self.posts.append((began, time.monotonic(), status, body))
            return Response(status_code=status)

        self.app = app

    def reset(self, *, delay: float = 0.0) -> None:
        with self.lock:
            self.posts.clear()
            self.delay = delay

    def answered(self, status: int) -> list[tuple[float, float, etree._Element]]:
        with self.lock:
            return [(b, e, etree.fromstring(body)) for b, e, s, body in self.posts if s == status]

    def taken(self) -> list[tuple[float, float, dict[str, str]]]:
        """(began, ended, fields) of every return node taken, in the order taken."""
        return [(b, e, {etree.QName(c).localname: c.text or "" for c in node})
                for b, e, root in self.answered(201) for node in root]


@pytest.fixture(scope="module")
def strict_window() -> Any:
    fake = StrictWindow()
    with serving(fake.app, lifespan="off") as fake.url:
        yield fake


def _sender(window: StrictWindow, **overrides: Any) -> Any:
    from mock_customs.base import Context

    return Context("customs", MockSettings(**{"gateway_url": window.url, "keys": {"customs": KEY},
                                              "receipt_backoff": 0.01, "receipt_backoff_max": 0.05, **overrides}))


def _g(label: str) -> str:
    """A head guid (36 characters, as the schema wants) that reads as ``label``."""
    return f"{label:-<36}"


def _valid_receipt(label: str, status: str = "120", code: str = "311") -> str:
    from schemas.catalog import FILED
    from schemas.receipts import DocumentReturn, receipt_xml

    fields = {"guid": _g(label), "ebpCode": "E1", "ebcCode": "E2", "orderNo": label} if code == "311" \
        else {"guid": _g(label), "payCode": "P1", "payTransactionId": label}
    return receipt_xml(FILED[code], [DocumentReturn(fields, status, "ok")])


async def test_ready_receipts_for_many_documents_go_out_in_few_valid_messages(strict_window: StrictWindow) -> None:
    # Four senders, thirty order receipts and ten payment receipts ready at once: each sender takes its
    # share of them, one message type per message.
    strict_window.reset(delay=0.1)
    ctx = _sender(strict_window, senders=4)
    try:
        orders, payments = [f"ORD-{i:02d}" for i in range(30)], [f"PAY-{i:02d}" for i in range(10)]
        for i, guid in enumerate(orders):
            await ctx.send_receipt(_valid_receipt(guid))
            if i % 3 == 0:
                await ctx.send_receipt(_valid_receipt(payments[i // 3], code="411"))
        await asyncio.wait_for(ctx.idle(), 10)
        taken = strict_window.answered(201)
        assert not strict_window.answered(422) and not strict_window.answered(409)
        assert 2 <= len(taken) <= 8, [len(root) for _, _, root in taken]  # not 40
        for _, _, root in taken:
            assert ceb_schema().validate(root)
            assert 1 <= len(root) <= 100 and len({etree.QName(n).localname for n in root}) == 1
        guids = [p[2]["guid"] for p in strict_window.taken()]
        assert sorted(guids) == sorted(map(_g, orders + payments))  # every node exactly once
        assert ctx.sender_state()["sent"] == 40 and ctx.sender_state()["pending"] == 0
        assert ctx.message_state() == {"messages": len(taken), "merged": len(taken), "split": 0}

        # Sixteen senders all busy with a post each while thirty more receipts queue up: the first
        # sender free takes all thirty in one message.
        strict_window.reset(delay=0.2)
        await ctx.stop()
        ctx = _sender(strict_window)
        for i in range(16):
            await ctx.send_receipt(_valid_receipt(f"BUSY-{i:02d}"))
        await asyncio.sleep(0.05)
        for i in range(30):
            await ctx.send_receipt(_valid_receipt(f"LATE-{i:02d}"))
        await asyncio.wait_for(ctx.idle(), 10)
        sizes = sorted(len(root) for _, _, root in strict_window.answered(201))
        assert sizes == [1] * 16 + [30]
    finally:
        await ctx.stop()


async def test_merge_setting_caps_the_nodes_per_message(strict_window: StrictWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    strict_window.reset(delay=0.02)
    ctx = _sender(strict_window, senders=1, merge=7)
    try:
        for i in range(30):
            await ctx.send_receipt(_valid_receipt(f"CAP-{i:02d}"))
        await asyncio.wait_for(ctx.idle(), 10)
        assert [len(root) for _, _, root in strict_window.answered(201)] == [7, 7, 7, 7, 2]
    finally:
        await ctx.stop()

    # SWX_MOCK_MERGE=1: one node per post, however much is waiting.
    monkeypatch.setenv("SWX_MOCK_MERGE", "1")
    strict_window.reset()
    ctx = _sender(strict_window, senders=1)
    assert ctx.settings.merge == 1
    try:
        for i in range(30):
            await ctx.send_receipt(_valid_receipt(f"ONE-{i:02d}"))
        await asyncio.wait_for(ctx.idle(), 10)
        assert [len(root) for _, _, root in strict_window.answered(201)] == [1] * 30
        assert [p[2]["guid"] for p in strict_window.taken()] == [_g(f"ONE-{i:02d}") for i in range(30)]
        assert ctx.message_state() == {"messages": 30, "merged": 0, "split": 0}
    finally:
        await ctx.stop()


async def test_one_documents_receipts_stay_in_turn_across_merged_messages(strict_window: StrictWindow) -> None:
    strict_window.reset(delay=0.05)
    ctx = _sender(strict_window, senders=2)
    try:
        lists = [f"LIST-{i}" for i in range(10)]
        for status in ("120", "399", "800"):  # all thirty queued before anything is sent
            for guid in lists:
                await ctx.send_receipt(_valid_receipt(guid, status))
        await asyncio.wait_for(ctx.idle(), 10)
        taken = strict_window.taken()
        assert len(taken) == 30 and len(strict_window.answered(201)) <= 8  # merged: 2 per round, 3 rounds
        for guid in lists:
            _assert_in_turn([p for p in taken if p[2]["guid"] == _g(guid)], ["120", "399", "800"])
    finally:
        await ctx.stop()


async def test_a_refused_merged_message_is_split_and_the_good_receipts_arrive(strict_window: StrictWindow) -> None:
    strict_window.reset(delay=0.02)
    ctx = _sender(strict_window, senders=1)
    try:
        good = [f"GOOD-{i}" for i in range(10)]
        for guid in good[:5] + ["BAD-1"] + good[5:]:
            await ctx.send_receipt(_valid_receipt(guid))
        await ctx.send_receipt(_valid_receipt("GOOD-3", "399"))  # behind its 120, which is in the refused message
        await ctx.send_receipt(_valid_receipt("BAD-1", "399"))  # behind a receipt the window refuses for good
        await asyncio.wait_for(ctx.idle(), 10)
        refused = [root for _, _, root in strict_window.answered(409)]
        assert len(refused[0]) == 11  # the merged message, refused whole, then split ...
        alone = [(n.findtext(f"{C}guid"), n.findtext(f"{C}returnStatus")) for root in refused if len(root) == 1 for n in root]
        assert alone == [(_g("BAD-1"), "120"), (_g("BAD-1"), "399")]  # ... until BAD-1 is refused alone: dropped
        assert ctx.message_state()["split"] == len([root for root in refused if len(root) > 1])
        taken = strict_window.taken()
        assert sorted(p[2]["guid"] for p in taken if p[2]["returnStatus"] == "120") == [_g(x) for x in good]  # each exactly once
        _assert_in_turn([p for p in taken if p[2]["guid"] == _g("GOOD-3")], ["120", "399"])
        assert not [p for p in taken if p[2]["guid"] == _g("BAD-1")]
        assert ctx.sender_state()["sent"] == 11 and ctx.sender_state()["dropped"] == 2
    finally:
        await ctx.stop()


async def test_tax_bills_merge_into_one_valid_ceb816(strict_window: StrictWindow) -> None:
    from mock_customs.tax import assess, load_rates, tax_bill_xml

    strict_window.reset(delay=0.05)
    builder = MessageBuilder(seed=next(_seeds))
    bills = []
    for i in range(12):
        inv = builder.declaration(builder.parties(), lines=1 + i % 3)["inventory"]
        a = assess(inv.head, inv.lines, load_rates(), Decimal(5000))
        bills.append(tax_bill_xml({**inv.head, "invtNo": f"5100{2024}I{i:09d}"}, inv.lines, a))
    ctx = _sender(strict_window, senders=1)
    try:
        for bill in bills:
            await ctx.send_receipt(bill)
        await asyncio.wait_for(ctx.idle(), 10)
        taken = strict_window.answered(201)
        assert not strict_window.answered(422) and [len(root) for _, _, root in taken] == [12]
        invt_nos = [rd.findtext(f"{C}invtNo") for _, _, root in taken for rd in root.iter(f"{C}TaxHeadRd")]
        assert invt_nos == [f"51002024I{i:09d}" for i in range(12)]
        # The bills went unchanged: each Tax element as the stand-in wrote it.
        sent = [etree.tostring(tax, method="c14n") for _, _, root in taken for tax in root]
        assert sent == [etree.tostring(etree.fromstring(b)[0], method="c14n") for b in bills]
    finally:
        await ctx.stop()


async def test_customs_steps_falling_due_together_go_out_together(strict_window: StrictWindow) -> None:
    strict_window.reset(delay=0.05)
    settings = MockSettings(gateway_url=strict_window.url, keys={"customs": KEY}, delivery_token=DELIVERY,
                            match_wait=5.0, step_delay=0.05, senders=2)
    app = create_regulator_app(Customs, settings)
    builder = MessageBuilder(seed=next(_seeds))
    async with app.router.lifespan_context(app), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://customs", timeout=30) as http:
        h = Harness(app, http, None, builder)  # type: ignore[arg-type]
        # Twenty lists in one delivery: their 399s come due on one timer, one CEB622 (so do the 800s).
        parties = builder.parties()
        decls = [builder.declaration(parties) for _ in range(20)]
        for code, kind in (("311", "order"), ("411", "payment"), ("511", "waybill"), ("621", "inventory")):
            await h.send(code, [d[kind] for d in decls], parties)
        await asyncio.wait_for(app.state.runtime.ctx.idle(), 10)
        await asyncio.sleep(0.3)
        await asyncio.wait_for(app.state.runtime.ctx.idle(), 10)
        lists = [root for _, _, root in strict_window.answered(201) if etree.QName(root).localname == "CEB622Message"]
        assert [[n.findtext(f"{C}returnStatus") for n in root] for root in lists] == [["120"] * 20, ["399"] * 20,
                                                                                      ["800"] * 20]
        # Twelve declarations delivered one by one: their steps fall due apart, but two senders
        # posting to a slow window find several waiting and merge them.
        strict_window.reset(delay=0.05)
        more = []
        for _ in range(12):
            p = builder.parties()
            decl = builder.declaration(p)
            await h.declare(decl, p)
            more.append(decl)
        deadline = time.monotonic() + 10
        while len([x for x in strict_window.taken() if x[2]["returnStatus"] == "800"]) < 12:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        taken = strict_window.taken()
        assert len(taken) == 12 * 6 and not strict_window.answered(422)
        assert len(strict_window.answered(201)) < 12 * 6 * 2 // 3, len(strict_window.answered(201))
        for decl in more:
            _assert_in_turn([p for p in taken if p[2]["guid"] == decl["inventory"].head["guid"]], ["120", "399", "800"])
