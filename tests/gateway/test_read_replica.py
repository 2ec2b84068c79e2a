"""``SWX_READ_DATABASE_URL``: the read views (declarations, deliveries, the ledger, statistics) come
from the replica, everything else from the primary. The "replica" here is a second, empty database
migrated alike, so a view read from the wrong one shows: the filing is on the primary, the views see
nothing."""

from __future__ import annotations

import httpx

from gateway.config import Settings
from gateway.migrate import upgrade
from schemas.builder import MessageBuilder
from tests.fixtures.declarations import state_of
from tests.fixtures.processes import register_firms
from tests.fixtures.server import scratch_database_url, spawn_swx


def test_the_read_views_come_from_the_replica_and_the_rest_from_the_primary(settings, tmp_path):
    replica = scratch_database_url(settings, tmp_path / "replica")
    if replica.startswith("postgresql"):  # the scratch database of this suite is the primary's: take one beside it
        replica = scratch_database_url(settings.model_copy(update={"database_url": replica}), tmp_path / "replica")
    upgrade(Settings(database_url=replica))
    with spawn_swx(settings, tmp_path / "primary", SWX_READ_DATABASE_URL=replica, SWX_DISPATCH="false") as swx:
        http = httpx.Client(base_url=swx.url, timeout=30)
        builder = MessageBuilder(seed=99)
        parties = builder.parties()
        keys = register_firms(http, swx.operator, parties)
        order = builder.order(parties)
        sender = parties.sender_for("311")
        r = http.post("/v1/filings", content=builder.message("311", order, sender=sender),
                      headers={"Authorization": f"Bearer {keys[sender.code]}", "Content-Type": "application/xml"})
        assert r.status_code == 201, r.text
        guid = r.json()["guid"]
        # the primary: the filing itself, the registry, the firm's receipts
        assert http.get(f"/v1/filings/{guid}", headers={"Authorization": f"Bearer {keys[sender.code]}"}).status_code == 200
        assert http.get(f"/v1/enterprises/{sender.code}", headers=swx.operator).status_code == 200
        # the replica (empty here): the views
        assert state_of(http, swx.operator, order) is None
        assert http.get("/v1/deliveries", headers=swx.operator).json()["deliveries"] == []
        assert http.get("/v1/stats", headers=swx.operator).json()["filings"]["total"] == 0
        assert http.get("/v1/ledger/checkpoint", headers=swx.operator).status_code == 503  # nothing signed there
        assert http.get("/healthz").json()["status"] == "ok"
        http.close()
