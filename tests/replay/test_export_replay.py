"""``swx replay`` of export sets (schemas/samples/export.py) against the live test server and its
stand-ins: waits between phases, invtNo filled from the target's lists, departed/returned/cancelled
declarations and summary results compared with the manifest; and a plain folder of captured export
messages replayed with --register-senders against a window that knows none of its firms.

Needs the customs stand-in's export lifecycle (mock_customs/customs_export.py); skipped without it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from replay import replay
from schemas.samples import generate
from tests.fixtures.server import OPERATOR_TOKEN

needs_export_customs = pytest.mark.skipif(
    importlib.util.find_spec("mock_customs.customs_export") is None,
    reason="the customs stand-in has no export lifecycle yet (branch export-standins: mock_customs/customs_export.py)",
)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200, force_terminal=False)


def run(paths: list[Path], server: str, **kw):
    kw.setdefault("console", quiet())
    return asyncio.run(replay(paths, target=server, operator_token=OPERATOR_TOKEN, **kw))


@needs_export_customs
def test_an_export_set_replays_as_its_manifest_says(server, tmp_path):
    root = tmp_path / "export"
    summary = generate(root, declarations=30, seed=5150, invalid_ratio=0.5, direction="export")
    assert summary.summaries >= 1 and summary.refused_files >= 5
    result = run([root], server, wait_final=30, report=tmp_path / "r.json", concurrency=8)
    shown = "\n".join(f"{m.kind} {m.name}: expected {m.expected}, got {m.got} -- {m.detail}" for m in result.mismatches)
    assert result.mismatches == [], f"{len(result.mismatches)} mismatch(es):\n{shown}"
    assert result.exit_code == 0
    states = {d.state for d in result.declarations}
    assert {"departed", "rejected", "declared"} <= states, states
    report = json.loads((tmp_path / "r.json").read_text())
    export = report["summary"]["export"]
    assert export["declarations"] == 30 and export["summaries"] == summary.summaries
