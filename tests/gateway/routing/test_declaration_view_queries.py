"""The reads that firms and regulators poll -- the declaration view and a pull regulator's inbox -- cost
at most two statements each, however much hangs on the declaration (issue 13).

A swx of its own (fx pulls, and is sent every document) gets one full declaration: order, payment,
waybill with two status updates, the list, and the regulators' verdicts on them. The test then opens
that swx's database itself and counts the statements each read issues, so that nothing else the server
runs at the time (its dispatcher, its ledger) is counted; the view it builds must be what the server
answers over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text

from schemas.builder import Parties, Party
from tests.fixtures.declarations import has_tax_bill, verdict
from tests.fixtures.server import eventually, spawn_swx

ROUTES = """
[messages]
"311" = ["customs", "fx"]
"411" = ["customs", "fx"]
"511" = ["customs", "fx"]
"513" = ["customs", "fx"]
"621" = ["customs", "inspection", "tax", "fx"]
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


class Counted:
    """The statements a database's engine sends while ``run`` runs."""

    def __init__(self, db) -> None:
        self.db = db

    async def __call__(self, run: Callable[[Any], Awaitable[Any]]) -> tuple[Any, list[str]]:
        statements: list[str] = []

        def count(conn, cursor, statement, *args):
            statements.append(statement)

        async with self.db.sessions() as session:
            await session.execute(text("SELECT 1"))  # a connection checked out and set up beforehand
            event.listen(self.db.engine.sync_engine, "before_cursor_execute", count)
            try:
                try:
                    result = await run(session)
                except Exception as exc:  # the refusal is an answer too
                    result = exc
            finally:
                event.remove(self.db.engine.sync_engine, "before_cursor_execute", count)
        return result, statements


@pytest.fixture
def declared(tmp_path, settings, builder):
    """The swx, its database URL and routes, the firm that filed everything, and the declaration."""
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES)
    with spawn_swx(settings, tmp_path, SWX_ROUTES=str(routes)) as spawned:
        http = httpx.Client(base_url=spawned.url, timeout=30)
        me = Party("3301965VEW", "视图测试跨境贸易有限公司", "DXPENT3301965VEW")
        firm = http.post("/v1/enterprises", headers=spawned.operator, json={
            "code": me.code, "name": me.name, "dxpId": me.dxp_id,
            "roles": ["ebp", "ebc", "pay", "logistics", "agent", "assure", "operator"]})
        assert firm.status_code == 201, firm.text
        auth = {"Authorization": f"Bearer {firm.json()['apiKey']}", "Content-Type": "application/xml"}
        parties = Parties(ebp=me, ebc=me, pay=me, logistics=me, agent=me, assure=me, operator=me)
        decl = builder.declaration(parties)
        statuses = [builder.waybill_status(decl["waybill"], parties, logisticsStatus=s) for s in ("R", "S")]
        for code, doc in [("311", decl["order"]), ("411", decl["payment"]), ("511", decl["waybill"]),
                          *(("513", s) for s in statuses), ("621", decl["inventory"])]:
            r = http.post("/v1/filings", content=builder.message(code, doc, sender=me), headers=auth)
            assert r.status_code == 201, f"{code}: {r.text}"
        order = decl["order"].head
        path = f"/v1/declarations/{order['ebpCode']}/{order['orderNo']}"

        def complete() -> dict | None:
            v = http.get(path, headers=spawned.operator).json()
            done = v["state"] == "released" and has_tax_bill(v) and verdict(v, "inventory", "inspection")
            return v if done and len(v["documents"].get("waybillStatus", [])) == 2 else None

        eventually(complete, timeout=30)
        fx = {"Authorization": "Bearer " + http.post("/v1/regulators/fx/keys", headers=spawned.operator).json()["apiKey"]}
        items = http.get("/v1/regulators/fx/inbox", headers=fx).json()["items"]
        assert len(items) >= 6, items
        r = http.post("/v1/regulators/fx/ack", json={"ids": [items[0]["id"], items[2]["id"]]}, headers=fx)
        assert r.status_code == 200, r.text  # delivered rows among the pending ones, which the inbox skips
        yield {"http": http, "operator": spawned.operator, "fx": fx, "url": spawned.env["SWX_DATABASE_URL"],
               "routes": routes, "me": me, "order": order, "path": path, "inbox": items}


def test_the_declaration_view_and_the_pull_inbox_cost_two_statements_at_most(declared):
    from gateway.auth import OPERATOR, Principal
    from gateway.config import Settings
    from gateway.db import Database
    from gateway.routing import service
    from gateway.routing.declarations import readable_declaration
    from gateway.routing.dispatcher import Dispatcher, DispatchSettings
    from gateway.routing.errors import DeclarationNotFound
    from gateway.routing.table import load_routes

    http, order, me = declared["http"], declared["order"], declared["me"]
    ebp, order_no = order["ebpCode"], order["orderNo"]
    callers = {
        "operator": OPERATOR,
        "a regulator": Principal("regulator", regulator="customs"),
        "a firm named": Principal("enterprise", code=me.code, codes=(me.code,)),
        "a firm not named": Principal("enterprise", code="3301965XXX", codes=("3301965XXX", "91330100MA2XXXXX0X")),
    }

    async def measure() -> dict[str, tuple[Any, list[str]]]:
        db = Database.open(Settings(database_url=declared["url"], operator_token="x"))
        try:
            counted = Counted(db)
            out = {}
            for who, caller in callers.items():
                out[who] = await counted(lambda s, caller=caller: readable_declaration(s, caller, ebp, order_no))
            routes = load_routes(declared["routes"])
            dispatcher = Dispatcher(db, routes, DispatchSettings(delivery_token="x", regulators_url="http://127.0.0.1/mock"), adapters={})
            out["inbox"] = await counted(lambda s: service.inbox(s, routes, dispatcher, "fx", 0, 100))
            return out
        finally:
            await db.engine.dispose()

    got = asyncio.run(measure())
    for who, (_, statements) in got.items():
        assert len(statements) <= 2, f"{who}: {len(statements)} statements:\n" + "\n\n".join(statements)

    view, _ = got["operator"]
    assert json.loads(json.dumps(view)) == http.get(declared["path"], headers=declared["operator"]).json()
    docs = view["documents"]
    assert set(docs) == {"order", "payment", "waybill", "inventory", "waybillStatus"} and len(docs["waybillStatus"]) == 2
    assert docs["order"]["amounts"]["acturalPaid"] == order["acturalPaid"]
    assert {"customs", "inspection", "tax"} <= set(docs["inventory"]["verdicts"]) and view["state"] == "released"
    assert got["a regulator"][0] == view and got["a firm named"][0] == view
    assert isinstance(got["a firm not named"][0], DeclarationNotFound)

    inbox, _ = got["inbox"]
    acked = {declared["inbox"][0]["id"], declared["inbox"][2]["id"]}
    assert [i["id"] for i in inbox["items"]] == [i["id"] for i in declared["inbox"] if i["id"] not in acked]
    assert inbox == http.get("/v1/regulators/fx/inbox", headers=declared["fx"]).json()
