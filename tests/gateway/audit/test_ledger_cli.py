"""`swx ledger verify` and `swx ledger check-proof` on a migrated database."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from typer.testing import CliRunner

from gateway.cli import app as cli
from gateway.config import get_settings


@pytest.fixture
def ledger_db(tmp_path, monkeypatch):
    db = tmp_path / "ledger.db"
    monkeypatch.setenv("SWX_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("SWX_LEDGER_KEY_PATH", str(tmp_path / "ledger.key"))
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    yield db
    get_settings.cache_clear()


def _fill(n: int) -> dict:
    """Append ``n`` entries through the migrated tables, sequence them, and return a proof bundle."""
    from gateway.db import make_engine, make_sessionmaker
    from ledger import Entry, Ledger, load_or_create_key

    settings = get_settings()
    ledger = Ledger(load_or_create_key(settings.ledger_key_path, settings.ledger_origin))

    async def run() -> dict:
        engine = make_engine(settings)
        sessions = make_sessionmaker(engine)
        try:
            async with sessions() as session, session.begin():
                for i in range(n):
                    await ledger.submit(session, Entry(
                        kind="filing.accepted", actor="3301960AB1", subject={"ebpCode": "3301960AB1", "orderNo": f"SO{i}"},
                        digest=f"{i:064x}"))
            await ledger.sequencer().integrate(sessions)
            async with sessions() as session:
                return await ledger.inclusion_bundle(session, n // 2)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_verify_passes_then_names_a_flipped_byte(ledger_db):
    _fill(20)
    ok = CliRunner().invoke(cli, ["ledger", "verify"])
    assert ok.exit_code == 0, ok.output
    with sqlite3.connect(ledger_db) as conn:
        (entry,) = conn.execute('SELECT entry FROM ledger_entries WHERE idx = 7').fetchone()
        conn.execute('UPDATE ledger_entries SET entry = ? WHERE idx = 7', (bytes(entry).replace(b"SO7", b"SO8"),))
    bad = CliRunner().invoke(cli, ["ledger", "verify"])
    assert bad.exit_code == 1
    assert "entry 7:" in bad.output and "altered" in bad.output


def test_check_proof_accepts_a_bundle_and_refuses_a_tampered_one(ledger_db, tmp_path):
    bundle = _fill(9)
    good = tmp_path / "proof.json"
    good.write_text(json.dumps(bundle))
    r = CliRunner().invoke(cli, ["ledger", "check-proof", str(good), "--key", bundle["verifierKey"]])
    assert r.exit_code == 0, r.output
    bundle["index"] = (bundle["index"] + 1) % bundle["size"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bundle))
    assert CliRunner().invoke(cli, ["ledger", "check-proof", str(bad)]).exit_code == 1


def test_verify_without_a_key_says_so(ledger_db):
    r = CliRunner().invoke(cli, ["ledger", "verify"])
    assert r.exit_code == 2 and "no ledger key" in r.output


def _forge_checkpoint(conn: sqlite3.Connection) -> None:
    """A checkpoint for a bigger tree, signed by a key that is not the log's."""
    from ledger import NoteSigner, sign_checkpoint

    size, root = conn.execute("SELECT size, root FROM ledger_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    forger = NoteSigner.generate(get_settings().ledger_origin)
    note = sign_checkpoint(forger, get_settings().ledger_origin, size + 1, bytes(root))
    conn.execute("INSERT INTO ledger_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, '2026-01-01 00:00:00')",
                 (size + 1, bytes(root), note))


TAMPERING = {
    "deleted row": lambda c: c.execute("DELETE FROM ledger_entries WHERE idx = 5"),
    "swapped pair": lambda c: c.executescript(
        "UPDATE ledger_entries SET idx = -1 WHERE idx = 3; UPDATE ledger_entries SET idx = 3 WHERE idx = 4;"
        "UPDATE ledger_entries SET idx = 4 WHERE idx = -1;"),
    "forged checkpoint": _forge_checkpoint,
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_verify_fails_on_tampering(ledger_db, how):
    _fill(12)
    assert CliRunner().invoke(cli, ["ledger", "verify"]).exit_code == 0
    with sqlite3.connect(ledger_db) as conn:
        TAMPERING[how](conn)
    bad = CliRunner().invoke(cli, ["ledger", "verify"])
    assert bad.exit_code == 1, bad.output
    if how != "forged checkpoint":
        assert "entry 3" in bad.output or "entry 5" in bad.output, bad.output
    else:
        assert "checkpoint" in bad.output, bad.output
