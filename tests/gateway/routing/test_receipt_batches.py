"""Receipts posted at once are stored together (group commit) and judged exactly as one by one would be:
each answered after its own commit, a refused one refused alone, a resent one answered once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.fixtures.parties import party_of

from .test_regulator_api import regulator_key, verdict


@pytest.fixture
def lists(swx, builder, filer):
    decls = []
    for _ in range(12):
        decl = builder.declaration(builder.parties())
        for code, kind in (("311", "order"), ("621", "inventory")):
            assert swx.file(filer, builder.message(code, decl[kind], sender=party_of(filer))).status_code == 201
        decls.append(decl)
    return decls


def _post_all(url: str, bodies: list[tuple[bytes, dict]]) -> list[httpx.Response]:
    def post(item):
        body, headers = item
        with httpx.Client(base_url=url, timeout=30) as http:
            return http.post("/v1/regulators/receipts", content=body, headers=headers)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_receipts_posted_at_once_are_each_applied_and_forwarded(swx, filer, lists):
    inspection = regulator_key(swx, "inspection")
    fx = regulator_key(swx, "fx")  # lists are not routed to fx: its verdicts are refused, alone
    bodies = [(verdict("621", d["inventory"].head, "500", f"held {i}"), inspection) for i, d in enumerate(lists)]
    bodies += [(verdict("621", d["inventory"].head, "399", "fx has no say"), fx) for d in lists[:3]]
    answers = _post_all(str(swx.http.base_url), bodies)
    assert [r.status_code for r in answers] == [201] * len(lists) + [409] * 3, [r.text for r in answers]
    for r, d in zip(answers, lists):
        (doc,) = r.json()["documents"]
        assert doc["status"] == "500" and filer.code in doc["forwardedTo"]
        order = d["order"].head
        view = swx.http.get(f"/v1/declarations/{order['ebpCode']}/{order['orderNo']}", headers=swx.operator).json()
        assert "fx" not in view["documents"]["inventory"]["verdicts"]
    feed = swx.http.get("/v1/receipts", params={"limit": 500}, headers=filer.auth).json()["receipts"]
    held = {x["returnInfo"] for x in feed if x["from"] == "inspection" and x["returnStatus"] == "500"}
    assert {f"held {i}" for i in range(len(lists))} <= held


def test_one_receipt_resent_at_once_is_recorded_once(swx, lists):
    inspection = regulator_key(swx, "inspection")
    body = verdict("621", lists[0]["inventory"].head, "500", "held once")
    answers = _post_all(str(swx.http.base_url), [(body, inspection)] * 8)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 7 + [201], codes
    first = next(r.json() for r in answers if r.status_code == 201)
    for r in answers:
        if r.status_code == 200:
            assert r.json() == {**first, "replay": True}
