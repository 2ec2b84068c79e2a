"""The offline verifier (``ledger.verify``): proofs checked without a database, and proof bundles read
from a ledger and checked on their own, also from the command line."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys

from ledger import Entry, NoteSigner, merkle
from ledger.verify import check_bundle, check_proof_file, verify_consistency_proof, verify_inclusion_proof
from tests.fixtures.ledger import DATA20, ORIGIN, entry, ref_mth, ref_path, ref_proof, submit
from tests.fixtures.paths import ROOT


def test_offline_verifier_imports_no_database_code():
    code = "import sys, ledger.verify; bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'aiosqlite', 'asyncpg', 'gateway')]; print(bad); sys.exit(1 if bad else 0)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_offline_verify_functions():
    d = tuple(DATA20[:13])
    root = ref_mth(d)
    proof = [base64.b64encode(h).decode() for h in ref_path(6, d)]
    assert verify_inclusion_proof(entry=d[6], index=6, size=13, proof=proof, root=base64.b64encode(root).decode())
    assert verify_inclusion_proof(leaf_hash=merkle.leaf_hash(d[6]), index=6, size=13, proof=proof, root=root)
    assert not verify_inclusion_proof(entry=d[7], index=6, size=13, proof=proof, root=root)
    cproof = ref_proof(5, d)
    assert verify_consistency_proof(5, 13, ref_mth(d[:5]), root, cproof)
    assert not verify_consistency_proof(5, 13, ref_mth(d[:6]), root, cproof)


async def test_bundles_check_offline(db, tmp_path):
    await submit(db, [entry(i) for i in range(11)])
    await db.seq.integrate(db.sessions, max_batch=4)
    async with db.sessions() as s:
        inc = await db.ledger.inclusion_bundle(s, 6)
        con = await db.ledger.consistency_bundle(s, 8)
        con_unsigned_first = await db.ledger.consistency_bundle(s, 5)
    assert inc["size"] == 11 and Entry.from_bytes(inc["entry"]) == entry(6)
    path = tmp_path / "inclusion.json"
    path.write_text(json.dumps(inc))
    res = check_proof_file(path, trusted_key=db.ledger.verifier_key, origin=ORIGIN)
    assert res.ok, str(res)
    assert "inclusion: OK" in str(res) and "result: OK" in str(res)
    assert check_bundle(inc).ok  # with the bundle's own key (and a note saying so)
    assert "firstCheckpoint" in con and check_bundle(con, db.ledger.verifier_key).ok
    res = check_bundle(con_unsigned_first, db.ledger.verifier_key)
    assert res.ok and "not signed" in str(res)
    other = NoteSigner.generate(ORIGIN).verifier_key()
    assert not check_bundle(inc, other).ok
    for key, value in [
        ("index", 5),
        ("size", 10),
        ("entry", entry(7).to_bytes().decode()),
        ("entry", inc["entry"].replace(":", ": ", 1)),
        ("proof", inc["proof"][:-1]),
        ("proof", [inc["proof"][1], inc["proof"][0], *inc["proof"][2:]]),
        ("checkpoint", inc["checkpoint"].replace("\n11\n", "\n12\n")),
        ("leafHash", base64.b64encode(b"\x00" * 32).decode()),
    ]:
        res = check_bundle({**inc, key: value}, db.ledger.verifier_key)
        assert not res.ok and "result: FAILED" in str(res), (key, str(res))
    for key, value in [("first", 7), ("firstRoot", inc["leafHash"]), ("proof", con["proof"][1:])]:
        assert not check_bundle({**con, key: value}, db.ledger.verifier_key).ok, key
    cmd = [sys.executable, "-m", "ledger.verify", str(path), "--key", db.ledger.verifier_key]
    out = await asyncio.to_thread(subprocess.run, cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "result: OK" in out.stdout, out.stdout + out.stderr
