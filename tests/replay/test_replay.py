"""``swx replay`` against the live test server: sample sets written here in the format of docs/testers.md
(clean declarations, an intake rule fault, a schema fault, a 三单对碰 fault), plain folders without a
manifest, --shuffle, --rate and ``after``; and the reports (JSON, JUnit, HTML) read back.

Each test writes a set of its own with a seed of its own: a set is filed once per target.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import time
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from replay import ManifestError, ReplayResult, replay, run_replay
from replay.compare import check_file, reason_code
from replay.html import render_html
from replay.manifest import FileItem, load, read_facts
from replay.records import FileRecord
from replay.runner import TokenBucket
from replay.senders import segment
from replay.summary import percentile, summarise
from schemas.builder import Doc, MessageBuilder, Parties, money
from tests.fixtures.server import OPERATOR_TOKEN

CODES = {"order": "311", "payment": "411", "waybill": "511", "inventory": "621"}
CORE = ("order", "payment", "waybill", "inventory")
_seeds = iter(range(31_000_000, 32_000_000))


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200, force_terminal=False)


class SetWriter:
    """Writes a sample set: messages/{seq:05d}-{declaration}-{type}.xml, enterprises.json, expected.jsonl."""

    def __init__(self, root: Path, seed: int | None = None) -> None:
        self.root = root
        self.builder = MessageBuilder(seed=seed if seed is not None else next(_seeds))
        self.parties: Parties = self.builder.parties()
        self.seq = 0
        self.lines: list[dict[str, Any]] = []
        self.decl_lines: list[dict[str, Any]] = []
        (root / "messages").mkdir(parents=True, exist_ok=True)

    def file(self, decl: str, code: str, doc: Doc, *, expect: dict[str, Any] | None = None,
             fault: str | None = None) -> str:
        self.seq += 1
        sender = self.parties.sender_for(code)
        name = f"messages/{self.seq:05d}-{decl}-{code}.xml"
        (self.root / name).write_bytes(self.builder.message(code, doc, sender=sender))
        self.lines.append({"type": "file", "file": name, "declaration": decl, "messageType": code, "sender": sender.code,
                           "fault": fault, "expect": expect or {"outcome": "accepted"}})
        return name

    def declaration(self, decl: str, docs: dict[str, Doc], *, expect: dict[str, Any] | None = None,
                    fault: str | None = None, after: str | None = None) -> None:
        order = docs["order"].head
        self.decl_lines.append({"type": "declaration", "declaration": decl, "ebpCode": order["ebpCode"],
                                "orderNo": order["orderNo"], "fault": fault, "after": after,
                                "expect": expect or {"state": "released"}})

    def clean(self, decl: str, *, after: str | None = None) -> dict[str, Doc]:
        docs = self.builder.declaration(self.parties)
        for kind in CORE:
            self.file(decl, CODES[kind], docs[kind])
        self.declaration(decl, docs, after=after)
        return docs

    def write(self) -> Path:
        (self.root / "enterprises.json").write_text(json.dumps(self.parties.registrations(), ensure_ascii=False))
        with (self.root / "expected.jsonl").open("w", encoding="utf-8") as out:
            for line in self.lines + self.decl_lines:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
        (self.root / "README.txt").write_text(f"test set, seed {self.builder.seed}\n")
        return self.root


def mixed_set(root: Path) -> Path:
    """Clean declarations (one filed after another), a duplicate order, a schema fault then its
    correction, and a payment that does not match its order."""
    s = SetWriter(root)
    s.clean("d00001")
    s.clean("d00002")
    s.clean("d00003", after="d00002")

    docs = s.builder.declaration(s.parties)  # the order filed twice: appType 1 on a key already taken
    s.file("d00004", "311", docs["order"])
    s.file("d00004", "311", docs["order"], fault="rule.duplicate-order",
           expect={"outcome": "rejected", "httpStatus": 422, "layer": "rule", "code": "-301010"})
    for kind in ("payment", "waybill", "inventory"):
        s.file("d00004", CODES[kind], docs[kind])
    s.declaration("d00004", docs)

    docs = s.builder.declaration(s.parties)  # a name too long for the schema, then the order as it should be
    broken = dataclasses.replace(docs["order"], head={**docs["order"].head, "ebpName": "x" * 101})
    s.file("d00005", "311", broken, fault="schema.too-long",
           expect={"outcome": "rejected", "httpStatus": 422, "layer": "schema", "code": "0002"})
    for kind in CORE:
        s.file("d00005", CODES[kind], docs[kind])
    s.declaration("d00005", docs)

    docs = s.builder.declaration(s.parties)  # a legal payment of another amount: customs refuses the list
    paid = money(Decimal(docs["order"].head["acturalPaid"]) - Decimal("1.00"))
    docs["payment"] = dataclasses.replace(docs["payment"], head={**docs["payment"].head, "amountPaid": paid})
    for kind in CORE:
        s.file("d00006", CODES[kind], docs[kind], fault="match.payment-amount" if kind == "payment" else None)
    s.declaration("d00006", docs, fault="match.payment-amount", expect={"state": "rejected", "code": "-621041"})
    return s.write()


def run(paths: list[Path], server: str, **kw: Any) -> ReplayResult:
    kw.setdefault("console", quiet())
    return asyncio.run(replay(paths, target=server, operator_token=OPERATOR_TOKEN, **kw))


def junit_counts(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    cases = root.findall("testsuite/testcase")
    assert int(root.get("tests")) == len(cases)
    return {"tests": len(cases), "failures": len(root.findall("testsuite/testcase/failure")),
            "errors": len(root.findall("testsuite/testcase/error")),
            "skipped": len(root.findall("testsuite/testcase/skipped")), "declared_failures": int(root.get("failures"))}


# ---------------------------------------------------------------------- the pieces, without a server
@pytest.mark.parametrize("reason, code", [
    ("customs refused the inventory: -621041 order acturalPaid 100.00 ≠ payment amountPaid 99.00", "-621041"),
    ("inspection refused the inventory: -621501 inspection: prohibited goods: line 1", "-621501"),
    ("customs refused the order: 100 refused", "100"),
    ("customs: manual review (人工审核): ebcCode 3301960AB1 is rated dishonest", None),
    ("customs：-621018 full-width colon", "-621018"),
    ("no colon at all", None), ("", None), (None, None),
])
def test_reason_code(reason, code):
    assert reason_code(reason) == code


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([7.0], 99) == 7.0 and percentile([], 50) is None


def test_token_bucket_spaces_requests():
    async def go() -> float:
        bucket = TokenBucket(50)
        started = time.monotonic()
        await asyncio.gather(*(bucket.take() for _ in range(11)))
        return time.monotonic() - started
    assert asyncio.run(go()) >= 0.19  # the first at once, then ten 20 ms apart


def test_manifest_refuses_paths_outside_the_set_and_circles(tmp_path):
    s = SetWriter(tmp_path / "set")
    s.clean("d00001", after="d00002")
    s.clean("d00002", after="d00001")
    s.write()
    with pytest.raises(ManifestError, match="circle"):
        load([s.root])
    lines = (s.root / "expected.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["file"] = "../../etc/passwd"
    (s.root / "expected.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    with pytest.raises(ManifestError, match="outside the sample set"):
        load([s.root])


def test_plain_facts_are_read_safely():
    b = MessageBuilder(seed=5)
    p = b.parties()
    order = b.order(p)
    msg = b.message("311", order, sender=p.ebp)
    facts = read_facts(b.wrap_dxp(msg, sender_id=p.ebp.dxp_id))
    assert (facts.message_type, facts.cop_code, facts.order_key, facts.problem) == ("311", p.ebp.code, order.head["orderNo"], None)
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    assert read_facts(evil).cop_code is None and "copCode" in read_facts(evil).problem
    assert "not well-formed" in read_facts(b"<x>").problem


def test_codes_stay_one_path_segment():
    assert [segment(v) for v in ("3301960AB1", "a/b", "..", "SO 1?")] == ["3301960AB1", "a%2Fb", "%2E%2E", "SO%201%3F"]


def test_the_html_report_escapes_what_it_did_not_write(tmp_path):
    hostile = "<script>alert(1)</script>"
    path = tmp_path / "x.xml"
    path.write_text(f"<a>{hostile}</a>")
    item = FileItem(file=f"{hostile}.xml", path=path, seq=1, group="g", declaration="d<1>", message_type="311",
                    sender="S", expect={"outcome": "accepted"})
    rec = FileRecord(item, status=422, latency_ms=12.5, outcome="rejected", layer="rule", code="-1",
                     excerpt=f'{{"detail": "{hostile}"}}')
    result = ReplayResult(target=f"http://t/{hostile}", options={"paths": [hostile]}, started_at="2024-01-01T00:00:00",
                          has_manifest=True, files=[rec])
    result.mismatches.append(check_file(rec))
    page = render_html(result, summarise(result), tmp_path)
    assert "<script>" not in page and "&lt;script&gt;" in page


# ---------------------------------------------------------------------- against the server
def test_a_mixed_set_replays_as_expected(server, tmp_path):
    root = mixed_set(tmp_path / "set")
    out = tmp_path / "out"
    result = run([root], server, wait_final=20, report=out / "report.json", junit=out / "junit.xml",
                 html=out / "report.html")
    assert [m.as_dict() for m in result.mismatches] == []
    assert result.exit_code == 0
    by_file = {f.item.file: f for f in result.files}
    dup = next(f for f in result.files if f.item.fault == "rule.duplicate-order")
    assert (dup.status, dup.layer, dup.code) == (422, "rule", "-301010")
    schema = next(f for f in result.files if f.item.fault == "schema.too-long")
    assert (schema.status, schema.layer, schema.code) == (422, "schema", "0002")
    decls = {d.item.key: d for d in result.declarations}
    assert {k: d.state for k, d in decls.items()} == {"d00001": "released", "d00002": "released", "d00003": "released",
                                                      "d00004": "released", "d00005": "released", "d00006": "rejected"}
    assert decls["d00006"].code == "-621041"
    # `after`: d00003 went out only once d00002 was final
    first_of_3 = min(f.at for f in by_file.values() if f.item.declaration == "d00003")
    assert first_of_3 >= decls["d00002"].final_at

    report = json.loads((out / "report.json").read_text())
    assert report["exitCode"] == 0 and report["mismatches"] == [] and report["target"] == server
    assert len(report["files"]) == 26 and len(report["declarations"]) == 6
    assert report["summary"]["totals"]["accepted"] == 24 and report["summary"]["totals"]["rejected"] == 2
    assert all(f["latencyMs"] > 0 for f in report["files"])
    counts = junit_counts(out / "junit.xml")
    assert counts == {"tests": 32, "failures": 0, "errors": 0, "skipped": 0, "declared_failures": 0}
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "as expected" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(server, "")  # nothing fetched


def test_a_wrong_manifest_line_fails_and_the_reports_say_where(server, tmp_path):
    s = SetWriter(tmp_path / "set")
    s.clean("d00001")
    docs = s.clean("d00002")
    # the manifest is wrong about one file and one declaration
    wrong = next(line for line in s.lines if line["declaration"] == "d00002" and line["messageType"] == "411")
    wrong["expect"] = {"outcome": "rejected", "httpStatus": 422, "layer": "rule", "code": "-401009"}
    s.decl_lines[0]["expect"] = {"state": "rejected", "code": "-621041"}
    root = s.write()
    out = tmp_path / "reports"
    console = quiet()
    code = run_replay([root], target=server, operator_token=OPERATOR_TOKEN, wait_final=20, console=console,
                      report=out / "r.json", junit=out / "j.xml", html=out / "r.html")
    assert code == 1
    text = console.file.getvalue()
    assert "Mismatches" in text and wrong["file"] in text

    report = json.loads((out / "r.json").read_text())
    assert report["exitCode"] == 1
    got = {m["name"]: m for m in report["mismatches"]}
    assert set(got) == {wrong["file"], "d00001"}
    assert got[wrong["file"]]["expected"] == "rejected 422 rule -401009" and got[wrong["file"]]["got"] == "accepted"
    assert got["d00001"]["expected"] == "rejected -621041" and got["d00001"]["got"] == "released"
    counts = junit_counts(out / "j.xml")
    assert counts["failures"] == counts["declared_failures"] == len(report["mismatches"]) == 2

    page = (out / "r.html").read_text()
    assert wrong["file"] in page and f'href="../set/{wrong["file"]}"' in page
    assert "rejected 422 rule -401009" in page and "<dd class=bad>accepted</dd>" in page
    assert "<details>" in page and docs["payment"].head["payTransactionId"] in page  # the file, embedded
    assert "rejected -621041" in page and "released" in page


def test_a_plain_folder_replays_outcomes_only(server, tmp_path):
    b = MessageBuilder(seed=next(_seeds))
    p = b.parties()
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as http:
        for body in p.registrations():
            assert http.post("/v1/enterprises", json=body).status_code == 201
    folder = tmp_path / "plain"
    (folder / "nested").mkdir(parents=True)
    docs = b.declaration(p)
    (folder / "a-order.xml").write_bytes(b.message("311", docs["order"], sender=p.ebp))
    wrapped = b.wrap_dxp(b.message("411", docs["payment"], sender=p.pay), sender_id=p.pay.dxp_id)
    (folder / "b-payment.xml").write_bytes(wrapped)  # a DxpMsg envelope: its sender is inside the Data
    (folder / "nested" / "c-waybill.xml").write_bytes(b.message("511", docs["waybill"], sender=p.logistics))
    (folder / "nested" / "d-list.xml").write_bytes(b.message("621", docs["inventory"], sender=p.agent))
    (folder / "e-again.xml").write_bytes(b.message("311", docs["order"], sender=p.ebp))  # refused: key taken
    result = run([folder], server, report=tmp_path / "r.json")
    assert result.exit_code == 0 and not result.has_manifest and result.mismatches == []
    assert [(f.item.file, f.item.message_type, f.outcome) for f in result.files] == [
        ("plain/a-order.xml", "311", "accepted"), ("plain/b-payment.xml", "411", "accepted"),
        ("plain/e-again.xml", "311", "rejected"), ("plain/nested/c-waybill.xml", "511", "accepted"),
        ("plain/nested/d-list.xml", "621", "accepted")]
    assert "no manifest: outcomes only" in result.notes
    assert json.loads((tmp_path / "r.json").read_text())["files"][2]["code"] == "-301010"

    # a sender the target does not know: that file cannot be filed, the rest can
    stranger = MessageBuilder(seed=next(_seeds))
    sp = stranger.parties()
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.xml").write_bytes(stranger.message("311", stranger.order(sp), sender=sp.ebp))
    (other / "y.xml").write_bytes(b.message("311", b.order(p), sender=p.ebp))
    console = quiet()
    assert run_replay([other], target=server, operator_token=OPERATOR_TOKEN, console=console) == 1
    assert "sender not registered at the target" in console.file.getvalue()


def test_shuffle_and_rate(server, tmp_path):
    s = SetWriter(tmp_path / "set")
    for n in range(1, 6):
        s.clean(f"d{n:05d}")
    root = s.write()
    started = time.monotonic()
    result = run([root], server, rate=10, shuffle=True, seed=3, wait_final=20, junit=tmp_path / "j.xml")
    assert result.mismatches == [] and result.exit_code == 0, [m.as_dict() for m in result.mismatches]
    assert time.monotonic() - started >= 1.5
    sent = sorted(f.at for f in result.files)
    assert sent[-1] - sent[0] >= 1.5, sent  # 20 files at 10 a second
    assert result.options["seed"] == 3 and result.options["rate"] == 10
    orders = {}
    for f in sorted(result.files, key=lambda f: f.at):
        orders.setdefault(f.item.declaration, []).append(f.item.seq)
    assert any(seqs != sorted(seqs) for seqs in orders.values()), orders  # shuffled within declarations
    assert junit_counts(tmp_path / "j.xml")["failures"] == 0


def test_without_wait_final_declarations_are_not_compared(server, tmp_path):
    s = SetWriter(tmp_path / "set")
    s.clean("d00001")
    s.decl_lines[0]["expect"] = {"state": "cancelled"}  # wrong, but nobody waits to see it
    root = s.write()
    result = run([root], server, junit=tmp_path / "j.xml")
    assert result.exit_code == 0 and not result.compared_declarations
    assert any("not compared" in n for n in result.notes)
    assert junit_counts(tmp_path / "j.xml")["skipped"] == 1


def test_an_unreachable_target_is_said_plainly(tmp_path):
    s = SetWriter(tmp_path / "set")
    s.clean("d00001")
    console = quiet()
    code = run_replay([s.write()], target="http://127.0.0.1:9", operator_token="x", console=console)
    assert code == 2 and "does not answer" in console.file.getvalue()


# ---------------------------------------------------------------------- a generated set (schemas/samples.py)
def _generator():
    """The other half of docs/testers.md, when it is there: schemas/samples (a module or a package)."""
    try:
        from schemas.samples import generate
    except ImportError:
        return None
    return generate


@pytest.mark.skipif(_generator() is None, reason="schemas.samples has no generate() yet")
def test_a_generated_set_replays_as_expected(server, tmp_path):
    generate = _generator()
    root = tmp_path / "generated"
    generate(root, declarations=50, seed=424_242, invalid_ratio=0.3)
    result = run([root], server, wait_final=45, report=tmp_path / "r.json", concurrency=8)
    shown = "\n".join(f"{m.kind} {m.name}: expected {m.expected}, got {m.got} -- {m.detail}" for m in result.mismatches)
    assert result.mismatches == [], f"{len(result.mismatches)} mismatch(es):\n{shown}"
    assert result.exit_code == 0 and len(result.declarations) == 50


def test_two_hundred_declarations_replay_through_the_cli_without_a_mismatch(settings, tmp_path):
    """The walkthrough of the README, end to end: generate, serve, replay, read the reports and the
    service's own statistics."""
    import subprocess
    import sys

    from schemas.samples import generate
    from tests.fixtures.paths import ROOT
    from tests.fixtures.server import spawn_swx

    root = tmp_path / "set"
    generate(root, declarations=200, seed=7, invalid_ratio=0.3)
    expected = [json.loads(line) for line in (root / "expected.jsonl").read_text().splitlines()]
    accepted = sum(1 for e in expected if e["type"] == "file" and e["expect"]["outcome"] == "accepted")
    with spawn_swx(settings, tmp_path / "swx", SWX_MOCK_MATCH_WAIT="15") as swx:
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "replay", str(root), "--target", swx.url, "--concurrency", "8",
             "--wait-final", "240", "--report", str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml"),
             "--html", str(tmp_path / "r.html")],
            cwd=ROOT, env={**swx.env, "COLUMNS": "120"}, capture_output=True, text=True, check=False, timeout=900,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        stats = httpx.get(swx.url + "/v1/stats", headers=swx.operator, timeout=30).json()
    totals = json.loads((tmp_path / "r.json").read_text())["summary"]["totals"]
    assert (totals["files"], totals["declarations"], totals["declarationsFinal"], totals["mismatches"]) == (902, 200, 200, 0)
    assert "0 mismatches" in done.stdout
    assert junit_counts(tmp_path / "j.xml")["failures"] == 0
    # the service saw what the set says it should
    assert stats["filings"]["accepted"] == accepted
    assert stats["declarations"]["byState"].get("released", 0) >= 180


def test_the_cli_without_the_tools_extra_says_what_to_install(tmp_path):
    """``rich`` comes with the ``tools`` extra only: without it ``swx replay`` says so instead of a traceback."""
    import subprocess
    import sys

    from tests.fixtures.paths import ROOT

    hide_rich = (
        "import sys\n"
        "class NoRich:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'rich':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoRich())\n"
        "from gateway.cli import app\n"
        "app()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide_rich, "replay", str(tmp_path), "--target", "http://127.0.0.1:9", "--operator-token", "x"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and ".[tools]" in done.stderr and "rich" in done.stderr
