"""Sample sets (schemas/samples, docs/testers.md): reproducible, well-formed manifests, and every
expectation in them confirmed here without a running window.

Each file is judged as intake judges it: ``gateway.intake.validate.check`` (steps 1-3), then, as the
service does when there is no schema finding, the registry check (``party_findings``, against the
set's enterprises.json) and the business-key check (``key_findings``, against the keys the set's
earlier accepted files stored). Each declaration is then judged as the regulator stand-ins judge it,
with their own functions: customs' matching (``match``), its limits and yearly accounts, inspection's
screening table and the sellers' credit ratings. Only the database and HTTP plumbing are left to a
replay against a live swx.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.intake.keys import document_status as _document_status
from gateway.intake.keys import key_findings
from gateway.intake.parties import Registered, party_findings
from gateway.intake.validate import check
from kit.xmlsafe import UnsafeXml
from mock_customs.customs import match
from mock_customs.inbound import read_message
from mock_customs.inspection import load_table, screen
from schemas.samples import BY_NAME, KINDS, generate

FILE_NAME = re.compile(r"^messages/(\d{5})-(d\d{5})-(\d{3})\.xml$")
STATES = {"released", "rejected", "cancelled", "review"}
MAX_BYTES = 10 * 1024 * 1024


@dataclass
class SampleSet:
    path: Path
    summary: object
    files: list[dict]
    decls: list[dict]
    enterprises: list[dict]

    def body(self, line: dict) -> bytes:
        return (self.path / line["file"]).read_bytes()


def load(path: Path, summary=None) -> SampleSet:
    lines = [json.loads(x) for x in (path / "expected.jsonl").read_text(encoding="utf-8").splitlines()]
    kinds = [x["type"] for x in lines]
    assert kinds == sorted(kinds, key=lambda k: k != "file"), "every file line comes before every declaration line"
    return SampleSet(path, summary, [x for x in lines if x["type"] == "file"], [x for x in lines if x["type"] == "declaration"],
                     json.loads((path / "enterprises.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> SampleSet:
    """300 declarations, 30 % of them faulty: every fault kind appears."""
    out = tmp_path_factory.mktemp("full") / "set"
    started = time.perf_counter()
    summary = generate(out, declarations=300, seed=7, invalid_ratio=0.3)
    assert time.perf_counter() - started < 15
    return load(out, summary)


# ---------------------------------------------------------------------- judging as swx does
@dataclass
class Row:  # what key_findings reads of a stored document
    kind: str
    status: str
    owner_code: str


def registry(s: SampleSet) -> dict[str, Registered]:
    found = {}
    for e in s.enterprises:
        reg = Registered(e["code"], e["name"], frozenset(e["roles"]), "active",
                         date.fromisoformat(e["validFrom"]) if e.get("validFrom") else None,
                         date.fromisoformat(e["validTo"]) if e.get("validTo") else None)
        for code in (e["code"], e.get("uscc")):
            if code:
                found[code] = reg
    return found


def judge_files(s: SampleSet) -> dict[str, dict]:
    """Each file's outcome as intake gives it (IntakeService.file / _judge), in filing order."""
    reg, dxp = registry(s), {e["code"]: e["dxpId"] for e in s.enterprises}
    stored: dict[tuple[str, str], Row] = {}
    outcomes = {}
    for line in s.files:
        sender = line["sender"]
        try:
            checked = check(s.body(line), max_depth=32, cop_code=sender, dxp_id=dxp[sender])
        except UnsafeXml as exc:
            outcomes[line["file"]] = {"outcome": "rejected", "httpStatus": 400, "layer": "xml", "code": exc.code}
            continue
        if checked.cop_code is not None and checked.cop_code != sender:
            f = next(f for f in checked.findings if f.code == "2002" and (f.path or "").endswith("copCode"))
            outcomes[line["file"]] = {"outcome": "rejected", "httpStatus": 403, "layer": f.layer, "code": f.code}
            continue
        findings = list(checked.findings)
        if checked.mtype is not None and not any(f.layer == "schema" for f in findings):
            findings += party_findings(checked.docs, reg)
            findings += key_findings(checked.docs, stored, sender)
        if findings:
            outcomes[line["file"]] = {"outcome": "rejected", "httpStatus": 422, "layer": findings[0].layer,
                                      "code": findings[0].code}
            continue
        for doc in checked.docs:
            key = (doc.mtype.kind, doc.key_text)
            prior = stored.get(key)
            owner = sender if prior is None or doc.app_type == "1" else prior.owner_code
            stored[key] = Row(doc.mtype.kind, _document_status(doc), owner)
        outcomes[line["file"]] = {"outcome": "accepted"}
    return outcomes


def judge_declarations(s: SampleSet) -> tuple[dict[str, dict], dict[tuple[str, str], Decimal]]:
    """Each declaration's final state as the regulator stand-ins decide it, and the buyers' yearly accounts."""
    credit = {c: e.get("creditRating", "general") for e in s.enterprises for c in (e["code"], e.get("uscc")) if c}
    table = load_table()
    latest: dict[str, dict[str, object]] = defaultdict(dict)  # declaration -> kind -> last accepted document
    for line in s.files:
        if line["expect"]["outcome"] == "accepted":
            msg = read_message(s.body(line), MAX_BYTES)
            latest[line["declaration"]][line["messageType"]] = msg.docs[0]
    accounts: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    states = {}
    for d in s.decls:  # `after` always names an earlier declaration: this order keeps it
        docs = latest[d["declaration"]]
        order, payment, waybill, inventory = (docs.get(c) for c in ("311", "411", "511", "621"))
        if None in (order, payment, waybill, inventory):
            states[d["declaration"]] = {"state": "rejected", "code": "-621047"}
            continue
        problems = match(inventory, order, payment, waybill)
        paid = Decimal(order.head["acturalPaid"])
        account = (inventory.head["buyerIdNumber"], inventory.head["declTime"][:4])
        if problems:
            states[d["declaration"]] = {"state": "rejected", "code": problems[0].split(" ", 1)[0]}
        elif paid > 5000:
            states[d["declaration"]] = {"state": "rejected", "code": "-621005"}
        elif accounts[account] + paid > 26000:
            states[d["declaration"]] = {"state": "rejected", "code": "-621018"}
        else:
            accounts[account] += paid
            status, info = screen(inventory.lines, table).verdict()
            if status == "100":
                states[d["declaration"]] = {"state": "rejected", "code": info.split(" ", 1)[0]}
            elif any(credit.get(inventory.head.get(f, "")) == "dishonest" for f in ("ebcCode", "agentCode")):
                states[d["declaration"]] = {"state": "review"}
            else:
                states[d["declaration"]] = {"state": "released"}
    return states, accounts


# ---------------------------------------------------------------------- the tests
def test_same_seed_same_bytes_other_seed_other_set(tmp_path):
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    sets = []
    for where, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / where / "set", declarations=40, seed=seed, invalid_ratio=0.5)
        sets.append(files(tmp_path / where / "set"))
    assert sets[0] == sets[1]
    assert sets[0]["expected.jsonl"] != sets[2]["expected.jsonl"]
    assert sets[0]["enterprises.json"] != sets[2]["enterprises.json"]


def test_manifest_shape(full):
    s = full
    names = sorted(p.relative_to(s.path).as_posix() for p in (s.path / "messages").iterdir())
    assert names == [f["file"] for f in s.files], "one line per file, in seq order"
    decl_ids = [d["declaration"] for d in s.decls]
    assert decl_ids == [f"d{i:05d}" for i in range(1, len(s.decls) + 1)]
    assert {f["declaration"] for f in s.files} == set(decl_ids), "every declaration has files and a line"
    codes = {e["code"] for e in s.enterprises}
    assert len(codes) == len(s.enterprises)
    for seq, f in enumerate(s.files, 1):
        m = FILE_NAME.match(f["file"])
        assert m and int(m[1]) == seq and m[2] == f["declaration"] and m[3] == f["messageType"], f
        assert f["sender"] in codes, f
        assert f["fault"] is None or f["fault"] in BY_NAME, f
        e = f["expect"]
        if e["outcome"] == "accepted":
            assert e == {"outcome": "accepted"}, f
        else:
            assert e["outcome"] == "rejected" and e["httpStatus"] in (400, 403, 422), f
            assert e["layer"] in ("xml", "schema", "rule") and e["code"], f
            assert f["fault"] is not None, f
    seen = set()
    orders = set()
    for d in s.decls:
        assert d["after"] is None or d["after"] in seen, d
        seen.add(d["declaration"])
        assert (d["ebpCode"], d["orderNo"]) not in orders
        orders.add((d["ebpCode"], d["orderNo"]))
        assert d["expect"]["state"] in STATES
        assert ("code" in d["expect"]) == (d["expect"]["state"] == "rejected"), d
        assert d["fault"] is None or d["fault"] in BY_NAME, d
        if d["fault"] is None:
            assert d["expect"] == {"state": "released"}, d
    readme = (s.path / "README.txt").read_text(encoding="utf-8")
    assert "swx samples generate --out set --declarations 300 --seed 7 --invalid-ratio 0.3" in readme
    assert str(s.summary).startswith(f"{s.path}: 300 declarations (90 with a fault, {len(KINDS)} kinds;")
    for kind, n in s.summary.faults.items():
        assert re.search(rf"^  {re.escape(kind)}\s+{n}\s", readme, re.MULTILINE), kind


def test_every_fault_kind_appears_at_ratio_0_3(full):
    assert set(full.summary.faults) == {k.name for k in KINDS}
    in_manifest = {d["fault"] for d in full.decls} - {None}
    assert in_manifest == set(full.summary.faults)
    for d in full.decls:  # a file fault is carried by one refused file of its declaration
        if d["fault"] and BY_NAME[d["fault"]].level == "file":
            refused = [f for f in full.files if f["declaration"] == d["declaration"] and f["fault"] == d["fault"]]
            assert len(refused) == 1 and refused[0]["expect"]["outcome"] == "rejected", d


def test_ratio_is_honoured(full, tmp_path):
    assert sum(d["fault"] is not None for d in full.decls) == 90
    s = generate(tmp_path / "set", declarations=120, seed=11, invalid_ratio=0.1)
    assert s.faulty == 12 and s.declarations == 120


def test_ratio_zero_gives_a_clean_set(tmp_path):
    s = load(tmp_path / "set", generate(tmp_path / "set", declarations=60, seed=5, invalid_ratio=0))
    assert s.summary.faults == {} and s.summary.refused_files == 0
    assert all(f["fault"] is None and f["expect"] == {"outcome": "accepted"} for f in s.files)
    assert all(d["fault"] is None and d["expect"] == {"state": "released"} for d in s.decls)
    assert judge_files(s) == {f["file"]: f["expect"] for f in s.files}
    assert judge_declarations(s)[0] == {d["declaration"]: d["expect"] for d in s.decls}


def test_accepted_files_pass_steps_1_to_3(full):
    dxp = {e["code"]: e["dxpId"] for e in full.enterprises}
    for f in full.files:
        if f["expect"]["outcome"] == "accepted":
            checked = check(full.body(f), max_depth=32, cop_code=f["sender"], dxp_id=dxp[f["sender"]])
            assert checked.findings == [], (f, checked.findings)


def test_xml_and_schema_faults_get_their_outcome_from_check(full):
    dxp = {e["code"]: e["dxpId"] for e in full.enterprises}
    seen = set()
    for f in full.files:
        if f["fault"] and f["fault"].split(".")[0] in ("xml", "schema"):
            seen.add(f["fault"])
            e = f["expect"]
            if e["layer"] == "xml":
                with pytest.raises(UnsafeXml) as exc:
                    check(full.body(f), max_depth=32, cop_code=f["sender"], dxp_id=dxp[f["sender"]])
                assert (e["httpStatus"], exc.value.code) == (400, e["code"]), f
            else:
                findings = check(full.body(f), max_depth=32, cop_code=f["sender"], dxp_id=dxp[f["sender"]]).findings
                assert findings and (findings[0].layer, findings[0].code) == (e["layer"], e["code"]), (f, findings)
                assert e["httpStatus"] == 422
    assert seen == {k.name for k in KINDS if k.layer in ("xml", "schema")}


def test_every_file_gets_the_outcome_intake_gives(full):
    """The whole set through intake's judgement: steps 1-3, then the registry and business keys."""
    outcomes = judge_files(full)
    wrong = [(f["file"], f["fault"], f["expect"], outcomes[f["file"]]) for f in full.files
             if outcomes[f["file"]] != f["expect"]]
    assert not wrong, wrong
    dxp = {e["code"]: e["dxpId"] for e in full.enterprises}
    for f in full.files:  # the faults that only the database steps can see pass steps 1-3
        if f["fault"] and BY_NAME[f["fault"]].confirmed in ("registry", "window") and f["expect"]["outcome"] == "rejected":
            assert check(full.body(f), max_depth=32, cop_code=f["sender"], dxp_id=dxp[f["sender"]]).findings == [], f


def test_every_declaration_ends_as_the_regulators_decide(full):
    states, accounts = judge_declarations(full)
    wrong = [(d["declaration"], d["fault"], d["expect"], states[d["declaration"]]) for d in full.decls
             if states[d["declaration"]] != d["expect"]]
    assert not wrong, wrong
    assert all(total <= 26000 for total in accounts.values())


def test_buyers_stay_under_the_yearly_limit_except_the_annual_groups(full):
    orders = {}
    for f in full.files:
        if f["expect"]["outcome"] == "accepted" and f["messageType"] in ("311", "621"):
            orders.setdefault(f["declaration"], {})[f["messageType"]] = read_message(full.body(f), MAX_BYTES).docs[0].head
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    buyers: dict[str, set[str]] = defaultdict(set)
    by_id = {d["declaration"]: d for d in full.decls}
    for d in full.decls:
        o, i = orders[d["declaration"]]["311"], orders[d["declaration"]]["621"]
        paid = Decimal(o["acturalPaid"])
        if d["fault"] != "limit.per-transaction":
            assert paid <= 5000, d
        else:
            assert paid > 5000, d
        buyers[o["buyerIdNumber"]].add(d["declaration"])
        if d["fault"] is None:
            totals[(o["buyerIdNumber"], i["declTime"][:4])] += paid
        if d["fault"] == "limit.annual":  # the chain before it: one buyer, one year, just under the limit
            chain, at = [], d["after"]
            while at:
                chain.append(at)
                at = by_id[at]["after"]
            assert len(chain) >= 2
            before = sum(Decimal(orders[x]["311"]["acturalPaid"]) for x in chain)
            assert {orders[x]["311"]["buyerIdNumber"] for x in chain} == {o["buyerIdNumber"]}
            assert {orders[x]["621"]["declTime"][:4] for x in chain} == {i["declTime"][:4]}
            assert before < 26000 < before + paid
    assert all(total < 26000 for total in totals.values()), max(totals.values())
    assert sum(len(ds) > 1 for ds in buyers.values()) >= 10, "several buyers come back"


def test_declarations_are_filed_by_the_firms_that_transmit_them(full):
    roles = {e["code"]: set(e["roles"]) for e in full.enterprises}
    needed = {"311": "ebp", "411": "pay", "511": "logistics", "513": "logistics", "621": "agent", "711": "operator"}
    for f in full.files:
        if f["fault"] is None:
            assert needed[f["messageType"]] in roles[f["sender"]], f
    kinds = {f["messageType"] for f in full.files}
    assert {"311", "411", "511", "513", "621", "711"} <= kinds
