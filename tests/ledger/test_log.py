"""Core of the audit ledger: canonical entries, RFC 9162 Merkle tree and proofs, C2SP signed
checkpoints, SQL storage and sequencing, full verification, offline verifier.

Database tests run on a temporary SQLite file, and also on PostgreSQL when ``SWX_TEST_DATABASE_URL``
is set -- there in a schema of their own (``ledger_test_<pid>``), dropped afterwards; ``public`` is
never touched.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from functools import cache

import pytest
from sqlalchemy import delete, event, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from ledger import (
    EMPTY_ROOT,
    PERSONAL_FIELDS,
    CanonicalJSONError,
    Entry,
    EntryError,
    Ledger,
    NoteError,
    NoteSigner,
    NoteVerifier,
    PersonalDataError,
    ProofError,
    assert_no_personal_data,
    canonical_json,
    load_or_create_key,
    merkle,
    parse_canonical,
    verify_checkpoint,
)
from ledger import log as ledger_log
from ledger.audit import verify_log
from ledger.checkpoint import key_hash, parse_checkpoint, sign_checkpoint, split_note
from ledger.sequencer import LedgerCorruptedError, Sequencer
from ledger.store import checkpoints, create_all, drop_all, entries, nodes, pending
from ledger.verify import (
    check_bundle,
    check_proof_file,
    verify_consistency_proof,
    verify_inclusion_proof,
)
from tests.fixtures.paths import ROOT

ORIGIN = "swx.test/ledger"


# --- an independent reference: RFC 9162 §2.1 written out recursively over raw entry bytes -----------


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ref_mth(d: tuple[bytes, ...]) -> bytes:
    return _ref_mth(tuple(d))


@cache
def _ref_mth(d: tuple[bytes, ...]) -> bytes:
    n = len(d)
    if n == 0:
        return sha(b"")
    if n == 1:
        return sha(b"\x00" + d[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return sha(b"\x01" + _ref_mth(d[:k]) + _ref_mth(d[k:]))


def ref_path(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: tuple[bytes, ...], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m: int, d: tuple[bytes, ...]) -> list[bytes]:
    return ref_subproof(m, d, True)


def flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


# The inputs of the CT test vectors (Go / C++ implementations of RFC 6962).
CT_LEAVES = (
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
)
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {  # (index, size) -> proof
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}  # fmt: skip
CT_CONSISTENCY = {  # (first, second) -> proof
    (1, 8): CT_INCLUSION[(0, 8)],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}  # fmt: skip


def tree_nodes(data: list[bytes]) -> dict[tuple[int, int], bytes]:
    f, out = merkle.Frontier(), {}
    for d in data:
        for lv, ix, h in f.append(merkle.leaf_hash(d)):
            out[(lv, ix)] = h
    return out


# --- Merkle tree: known vectors and the reference ----------------------------------------------------


def test_empty_tree_hash():
    assert merkle.EMPTY_ROOT == EMPTY_ROOT == sha(b"") == ref_mth(())
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.Frontier().root() == EMPTY_ROOT


def test_ct_known_roots():
    for n in range(1, 9):
        assert ref_mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
        assert merkle.root_of(merkle.leaf_hash(x) for x in CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
    assert merkle.root_of(map(merkle.leaf_hash, CT_LEAVES)).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def test_ct_known_proofs():
    got = tree_nodes(list(CT_LEAVES))
    for (i, n), want in CT_INCLUSION.items():
        proof = merkle.assemble(merkle.inclusion_ranges(i, n), got.__getitem__)
        assert [h.hex() for h in proof] == want
        assert [h.hex() for h in ref_path(i, CT_LEAVES[:n])] == want
        assert merkle.verify_inclusion(merkle.leaf_hash(CT_LEAVES[i]), i, n, proof, bytes.fromhex(CT_ROOTS[n - 1]))
    for (m, n), want in CT_CONSISTENCY.items():
        proof = merkle.assemble(merkle.consistency_ranges(m, n), got.__getitem__)
        assert [h.hex() for h in proof] == want
        assert [h.hex() for h in ref_proof(m, CT_LEAVES[:n])] == want
        assert merkle.verify_consistency(m, n, bytes.fromhex(CT_ROOTS[m - 1]), bytes.fromhex(CT_ROOTS[n - 1]), proof)


DATA20 = [f"leaf-{i}".encode() * (i % 3 + 1) for i in range(21)]
NODES20 = tree_nodes(DATA20)


def test_frontier_emits_every_complete_subtree():
    f = merkle.Frontier()
    seen: dict[tuple[int, int], bytes] = {}
    for n, d in enumerate(DATA20, start=1):
        for lv, ix, h in f.append(merkle.leaf_hash(d)):
            assert (lv, ix) not in seen
            assert h == ref_mth(tuple(DATA20[ix << lv : (ix + 1) << lv]))
            seen[(lv, ix)] = h
        assert f.root() == ref_mth(tuple(DATA20[:n]))
        assert len(seen) == 2 * n - n.bit_count()
        g = merkle.Frontier.from_nodes(n, seen)  # resuming from stored nodes gives the same edge
        assert g.root() == f.root() and g.hashes() == f.hashes()


@pytest.mark.parametrize("n", range(1, 21))
def test_inclusion_every_index(n):
    d = tuple(DATA20[:n])
    root = ref_mth(d)
    for i in range(n):
        proof = merkle.assemble(merkle.inclusion_ranges(i, n), NODES20.__getitem__)
        assert proof == ref_path(i, d)
        leaf = merkle.leaf_hash(d[i])
        assert merkle.verify_inclusion(leaf, i, n, proof, root)
        for j in range(len(proof)):  # any proof hash altered
            for bit in (0, 7):
                bad = list(proof)
                bad[j] = flip(bad[j], bit)
                assert not merkle.verify_inclusion(leaf, i, n, bad, root)
        if proof:
            assert not merkle.verify_inclusion(leaf, i, n, proof[:-1], root)
        assert not merkle.verify_inclusion(leaf, i, n, proof + [root], root)
        for other in range(n + 2):  # another index
            if other != i:
                assert not merkle.verify_inclusion(leaf, other, n, proof, root)
        for size in range(1, 23):  # another size (with the root a checkpoint of that size would give)
            if size != n and size <= 21:
                assert not merkle.verify_inclusion(leaf, i, size, proof, ref_mth(tuple(DATA20[:size])))
        assert not merkle.verify_inclusion(leaf, i, n, proof, flip(root))  # another root
        assert not merkle.verify_inclusion(flip(leaf), i, n, proof, root)  # another leaf
        if n > 1:
            assert not merkle.verify_inclusion(merkle.leaf_hash(d[(i + 1) % n]), i, n, proof, root)


@pytest.mark.parametrize("n", range(1, 21))
def test_consistency_every_pair(n):
    d = tuple(DATA20[:n])
    root2 = ref_mth(d)
    assert merkle.verify_consistency(0, n, EMPTY_ROOT, root2, [])
    assert not merkle.verify_consistency(0, n, flip(EMPTY_ROOT), root2, [])
    for m in range(1, n + 1):
        root1 = ref_mth(d[:m])
        proof = merkle.assemble(merkle.consistency_ranges(m, n), NODES20.__getitem__)
        assert proof == ref_proof(m, d)
        assert merkle.verify_consistency(m, n, root1, root2, proof)
        assert not merkle.verify_consistency(m, n, flip(root1), root2, proof)
        assert not merkle.verify_consistency(m, n, root1, flip(root2), proof)
        for j in range(len(proof)):
            bad = list(proof)
            bad[j] = flip(bad[j])
            assert not merkle.verify_consistency(m, n, root1, root2, bad)
        if proof:
            assert not merkle.verify_consistency(m, n, root1, root2, proof[:-1])
        assert not merkle.verify_consistency(m, n, root1, root2, proof + [root2])
        for m2 in range(n + 1):  # another first size, with that size's root
            if m2 != m and not (m2 == 0 and not proof):  # (the empty tree is a prefix of any tree)
                assert not merkle.verify_consistency(m2, n, ref_mth(d[:m2]), root2, proof)
                assert not merkle.verify_consistency(m2, n, root1, root2, proof)
        for n2 in range(m, 22):  # another second size, with that size's root
            if n2 != n:
                assert not merkle.verify_consistency(m, n2, root1, ref_mth(tuple(DATA20[:n2])), proof)
        assert not merkle.verify_consistency(n, m, root2, root1, proof) or m == n  # reversed


def test_proof_arguments_are_checked():
    with pytest.raises(ProofError):
        merkle.inclusion_ranges(3, 3)
    with pytest.raises(ProofError):
        merkle.consistency_ranges(0, 3)
    with pytest.raises(ProofError):
        merkle.consistency_ranges(4, 3)
    assert not merkle.verify_inclusion(b"short", 0, 1, [], b"x" * 32)
    assert not merkle.verify_consistency(2, 1, b"a" * 32, b"b" * 32, [])


# --- canonical JSON and entries ---------------------------------------------------------------------


def test_canonical_json_form():
    assert canonical_json({"b": 1, "a": [True, False, None, "x"], "c": {"z": -3, "y": ""}}) == (
        b'{"a":[true,false,null,"x"],"b":1,"c":{"y":"","z":-3}}'
    )
    # RFC 8785 §3.2.3: names sorted by UTF-16 code units (U+1F600 sorts before U+FB33)
    names = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    obj = {k: i for i, k in enumerate(names)}
    order = [k for k, _ in json.loads(canonical_json(obj), object_pairs_hook=list)]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    # escapes as ECMAScript JSON.stringify; non-ASCII as UTF-8
    assert canonical_json("a\"\\/\b\f\n\r\t\x01\x1f\x7f é€😀") == '"a\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f é€😀"'.encode()
    assert canonical_json(2**53 - 1) == b"9007199254740991"


def test_canonical_json_is_stable():
    a = {"subject": {"orderNo": "A1", "ebpCode": "E1"}, "kind": "k", "n": 3}
    b = {"n": 3, "kind": "k", "subject": {"ebpCode": "E1", "orderNo": "A1"}}
    assert canonical_json(a) == canonical_json(b)
    assert canonical_json(parse_canonical(canonical_json(a))) == canonical_json(a)


@pytest.mark.parametrize("bad", [1.0, 0.5, float("nan"), float("inf"), {"x": 1.5}, [2.0], {1: "a"}, {("a",): 1}, 2**53, -(2**53), b"x", {1, 2}, "\ud800"])
def test_canonical_json_rejects(bad):
    with pytest.raises(CanonicalJSONError):
        canonical_json(bad)


@pytest.mark.parametrize("text", ['{"b":1,"a":2}', '{"a": 1}', '{"a":1.0}', '{"a":1e3}', '{"a":1,"a":1}', "[-0]", '"\\u0041"', "NaN", "{", b"\xff"])
def test_parse_canonical_rejects(text):
    with pytest.raises(CanonicalJSONError):
        parse_canonical(text)


DIGEST = hashlib.sha256(b"<CEB311Message/>").hexdigest()


def entry(i: int = 0, task: int = 0, **kw) -> Entry:
    fields = {
        "kind": "filing.accepted",
        "actor": "E0000001",
        "subject": {"ebpCode": "E0000001", "orderNo": f"ORD-{task:03d}-{i:05d}"},
        "digest": hashlib.sha256(f"{task}:{i}".encode()).hexdigest(),
        "time": "2024-05-01T08:30:00.123Z",
    }
    fields.update(kw)
    return Entry(**fields)


def test_entry_bytes_and_round_trip():
    e = Entry("filing.accepted", "E0000001", {"orderNo": "A1", "ebpCode": "E1"}, DIGEST, "2024-05-01T08:30:00.123Z", {"msgType": "CEB311", "docs": 1})
    assert e.to_bytes() == (
        b'{"actor":"E0000001","digest":"' + DIGEST.encode() + b'","extra":{"docs":1,"msgType":"CEB311"},'
        b'"kind":"filing.accepted","subject":{"ebpCode":"E1","orderNo":"A1"},"time":"2024-05-01T08:30:00.123Z"}'
    )
    assert Entry.from_bytes(e.to_bytes()) == e
    assert b"extra" not in entry().to_bytes()  # an empty extra is omitted
    assert len(Entry("k", "a", {"x": 1}, DIGEST).time) == 24  # default time: now, with milliseconds


@pytest.mark.parametrize(
    "kw",
    [
        {"time": "2024-05-01T08:30:00Z"},
        {"time": "2024-05-01T08:30:00.123+08:00"},
        {"time": "2024-13-01T08:30:00.123Z"},
        {"digest": DIGEST.upper()},
        {"digest": "00"},
        {"kind": ""},
        {"actor": ""},
        {"subject": {}},
        {"subject": {"orderNo": 1.5}},
        {"subject": {"order": {"nested": "x"}}},
        {"extra": {"amount": 12.5}},
        {"extra": {"blob": "x" * 3000}},
    ],
)
def test_entry_validation(kw):
    with pytest.raises(EntryError):
        entry(**kw)


def test_entry_from_bytes_refuses_non_canonical():
    raw = entry().to_bytes()
    with pytest.raises(EntryError):
        Entry.from_bytes(raw.replace(b":", b": ", 1))
    with pytest.raises(EntryError):
        Entry.from_bytes(raw[:-1] + b',"more":1}')


LISTED = [
    "buyerName", "buyerIdNumber", "buyerTelephone", "consignee", "consigneeTelephone", "consigneeAddress",
    "payerName", "payerIdNumber", "telephone", "name", "phone", "address", "email", "idNumber",
]  # fmt: skip


@pytest.mark.parametrize("field", sorted(set(LISTED) | PERSONAL_FIELDS))
def test_personal_data_guard_refuses(field):
    assert field in PERSONAL_FIELDS
    for where in ("subject", "extra"):
        with pytest.raises(PersonalDataError, match=field):
            entry(**{where: {"orderNo": "A1", field: "x"}})
    with pytest.raises(PersonalDataError):
        entry(extra={"parties": [{"role": "buyer", field: "x"}]})  # at any depth
    with pytest.raises(PersonalDataError):
        entry(subject={"orderNo": "A1", field.upper(): "x"})  # any case
    with pytest.raises(PersonalDataError):
        assert_no_personal_data({"order": {field: "x"}})


def test_personal_data_guard_lets_business_keys_through():
    e = entry(subject={"ebpCode": "E1", "orderNo": "A1", "logisticsNo": "L1", "copNo": "C1"}, extra={"ebpName": "Shop Ltd", "status": 2})
    assert_no_personal_data(e)
    with pytest.raises(PersonalDataError):
        assert_no_personal_data({"buyer_name": "x"})  # separators ignored too


# --- signed notes and checkpoints -------------------------------------------------------------------

GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"


def test_signed_note_matches_go_reference():
    """The example of golang.org/x/mod/sumdb/note, byte for byte (Ed25519 signing is deterministic)."""
    signer = NoteSigner.from_key_string(GO_SKEY)
    assert signer.verifier_key() == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_NOTE
    from ledger.checkpoint import open_note

    assert open_note(GO_NOTE, GO_VKEY) == GO_TEXT
    with pytest.raises(NoteError):
        open_note(GO_NOTE.replace("problem,", "problem;"), GO_VKEY)


def test_key_hash_and_verifier_key_format():
    s = NoteSigner.generate(ORIGIN)
    pub = s.verifier.public_key
    want = hashlib.sha256(ORIGIN.encode() + b"\n" + b"\x01" + pub).digest()[:4]
    assert key_hash(ORIGIN, pub) == want
    typed_key = base64.b64encode(b"\x01" + pub).decode()
    assert s.verifier_key() == f"{ORIGIN}+{want.hex()}+{typed_key}"
    assert str(NoteVerifier.from_string(s.verifier_key())) == s.verifier_key()
    with pytest.raises(NoteError):
        NoteVerifier.from_string(f"{ORIGIN}+00000000+{typed_key}")
    assert NoteSigner.from_key_string(s.key_string()).verifier_key() == s.verifier_key()


def test_checkpoint_format_and_signature():
    s = NoteSigner.generate(ORIGIN)
    root = sha(b"root")
    note = sign_checkpoint(s, ORIGIN, 1234, root)
    body = f"{ORIGIN}\n1234\n{base64.b64encode(root).decode()}\n"
    assert note.startswith(body + "\n\u2014 " + ORIGIN + " ")
    assert note.endswith("\n") and note.count("\n") == 5
    _, sigs = split_note(note)
    assert len(sigs) == 1 and sigs[0].key_hash == s.verifier.key_hash and len(sigs[0].signature) == 64
    cp = verify_checkpoint(note, s.verifier_key(), origin=ORIGIN)
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, 1234, root)
    other = NoteSigner.generate(ORIGIN)  # same name, another key
    with pytest.raises(NoteError):
        verify_checkpoint(note, other.verifier_key())
    with pytest.raises(NoteError):
        verify_checkpoint(note, s.verifier_key(), origin="elsewhere/log")
    with pytest.raises(NoteError):
        verify_checkpoint(note.replace("1234", "1235"), s.verifier_key())
    forged = other.sign(body)  # a valid signature, by the wrong key
    with pytest.raises(NoteError):
        verify_checkpoint(forged, s.verifier_key())
    cosigned = note + forged.split("\n\n", 1)[1]  # an unknown extra signature is ignored
    assert verify_checkpoint(cosigned, s.verifier_key()).size == 1234
    with pytest.raises(NoteError):
        parse_checkpoint(f"{ORIGIN}\n01\n{base64.b64encode(root).decode()}\n")


def test_load_or_create_key(tmp_path):
    path = tmp_path / "keys" / "ledger.key"
    s1 = load_or_create_key(path, ORIGIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith(f"PRIVATE+KEY+{ORIGIN}+")
    s2 = load_or_create_key(path, ORIGIN)
    assert s2.verifier_key() == s1.verifier_key()
    assert load_or_create_key(path).verifier_key() == s1.verifier_key()
    with pytest.raises(NoteError):
        load_or_create_key(path, "another/origin")
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    assert load_or_create_key(tmp_path / "default.key").name == "swx.example/ledger"


# --- offline verifier: bundles ----------------------------------------------------------------------


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


# --- database ---------------------------------------------------------------------------------------

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("SWX_TEST_DATABASE_URL") else [])
PG_SCHEMA = f"ledger_test_{os.getpid()}"


@dataclass
class DB:
    backend: str
    engine: AsyncEngine
    sessions: async_sessionmaker
    ledger: Ledger
    seq: Sequencer


@pytest.fixture(scope="session")
async def pg_schema():
    """A schema of our own in the shared test database; dropped at the end (never ``public``)."""
    url = os.environ.get("SWX_TEST_DATABASE_URL")
    if not url:
        yield None
        return
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
        await conn.execute(text(f'CREATE SCHEMA "{PG_SCHEMA}"'))
    yield url
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE'))
    await admin.dispose()


@pytest.fixture(params=BACKENDS)
async def db(request, tmp_path, pg_schema):
    if request.param == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    else:
        engine = create_async_engine(pg_schema, pool_size=20, max_overflow=40, connect_args={"server_settings": {"search_path": PG_SCHEMA}})
        async with engine.begin() as conn:
            await drop_all(conn)
    async with engine.begin() as conn:
        await create_all(conn)
    ledger = Ledger(NoteSigner.generate(ORIGIN))
    yield DB(request.param, engine, async_sessionmaker(engine, expire_on_commit=False), ledger, ledger.sequencer())
    if request.param != "sqlite":
        async with engine.begin() as conn:
            await drop_all(conn)
    await engine.dispose()


async def submit(db: DB, items: list[Entry]) -> None:
    async with db.sessions() as s, s.begin():
        await db.ledger.submit_many(s, items)


async def all_entry_bytes(db: DB) -> list[bytes]:
    async with db.sessions() as s:
        return [bytes(e) for (e,) in await s.execute(select(entries.c.entry).order_by(entries.c.idx))]


async def checkpoint_sizes(db: DB) -> list[int]:
    async with db.sessions() as s:
        return [n for (n,) in await s.execute(select(checkpoints.c.size).order_by(checkpoints.c.size))]


async def report(db: DB):
    async with db.sessions() as s:
        return await verify_log(s, db.ledger.verifier_key, origin=ORIGIN, chunk=7)


def test_tables_are_prefixed():
    from ledger.store import metadata

    assert sorted(metadata.tables) == ["ledger_checkpoints", "ledger_entries", "ledger_nodes", "ledger_pending", "ledger_topics"]


async def test_empty_log(db):
    async with db.sessions() as s:
        assert await db.ledger.latest_checkpoint(s) is None
    assert await db.seq.integrate(db.sessions) == 0
    async with db.sessions() as s:
        cp = await db.ledger.latest_checkpoint(s)
        assert (cp.size, cp.root) == (0, EMPTY_ROOT)
        assert verify_checkpoint(cp.note, db.ledger.verifier_key).size == 0
        assert await db.ledger.consistency_proof(s, 0, 0) == []
        with pytest.raises(ProofError):
            await db.ledger.inclusion_proof(s, 0, 1)
    assert await db.seq.integrate(db.sessions) == 0
    assert await checkpoint_sizes(db) == [0]
    rep = await report(db)
    assert rep.ok and rep.size == 0 and rep.checkpoints == 1, rep


async def test_submit_is_part_of_the_callers_transaction(db):
    async with db.sessions() as s, s.begin():
        r = await db.ledger.submit(s, entry(1))
        assert r.leaf_hash == merkle.leaf_hash(entry(1).to_bytes())
        await s.rollback()
    assert await db.seq.integrate(db.sessions) == 0
    async with db.sessions() as s, s.begin():
        r = await db.ledger.submit(s, entry(2))
    async with db.sessions() as s:
        assert await db.ledger.find(s, r.leaf_hash) == []  # pending, not yet sequenced
    assert await db.seq.integrate(db.sessions) == 1
    async with db.sessions() as s:
        assert await db.ledger.find(s, r.leaf_hash) == [0]
        (got,) = await db.ledger.entries(s, 0, 10)
        assert Entry.from_bytes(got.entry) == entry(2) and got.leaf_hash == r.leaf_hash
    sneaky = entry(3)
    object.__setattr__(sneaky, "extra", {"buyerName": "x"})  # bypassing the constructor's check
    with pytest.raises(PersonalDataError):
        async with db.sessions() as s, s.begin():
            await db.ledger.submit(s, sneaky)
    assert await all_entry_bytes(db) == [entry(2).to_bytes()]


async def test_topics_index_sequenced_entries(db):
    async with db.sessions() as s, s.begin():
        await db.ledger.submit_many(s, [
            (entry(0), ["order:A/1", "party:A"]), entry(1), (entry(2), ["party:A", "party:A"]), (entry(3), ["order:A/1"]),
        ])
        with pytest.raises(ValueError):
            await db.ledger.submit(s, entry(4), ["two\nlines"])
        with pytest.raises(ValueError):
            await db.ledger.submit(s, entry(4), ["x" * 201])
    async with db.sessions() as s:
        assert await db.ledger.indexes_for(s, ["party:A"]) == []  # nothing before sequencing
    assert await db.seq.integrate(db.sessions, max_batch=3) == 4  # topics follow entries across batches
    async with db.sessions() as s:
        assert await db.ledger.indexes_for(s, ["order:A/1"]) == [0, 3]
        assert await db.ledger.indexes_for(s, ["order:A/1", "party:A"]) == [0, 2, 3]
        assert await db.ledger.indexes_for(s, ["party:A", "order:A/1"], start=1, end=3) == [2]
        assert await db.ledger.indexes_for(s, ["order:A/1", "party:A"], limit=2) == [0, 2]
        assert await db.ledger.topics_of(s, [0, 1, 2]) == {0: {"order:A/1", "party:A"}, 1: set(), 2: {"party:A"}}
        got = await db.ledger.entries_at(s, [3, 0, 99])
        assert [(e.index, Entry.from_bytes(e.entry)) for e in got] == [(0, entry(0)), (3, entry(3))]
    assert (await report(db)).ok


async def test_stored_node_proofs_equal_reference(db):
    """One batch per entry, so every size 1..20 is checkpointed; every proof read from stored nodes."""
    for i in range(20):
        await submit(db, [entry(i)])
        assert await db.seq.integrate(db.sessions) == 1
    data = tuple(await all_entry_bytes(db))
    assert data == tuple(entry(i).to_bytes() for i in range(20))
    assert await checkpoint_sizes(db) == list(range(1, 21))
    async with db.sessions() as s:
        for n in range(1, 21):
            cp = await db.ledger.checkpoint_at(s, n)
            assert cp.root == ref_mth(data[:n]) == await db.ledger.root_at(s, n)
            for i in range(n):
                proof = await db.ledger.inclusion_proof(s, i, n)
                assert proof == ref_path(i, data[:n])
                assert merkle.verify_inclusion(merkle.leaf_hash(data[i]), i, n, proof, cp.root)
            for m in range(n + 1):
                proof = await db.ledger.consistency_proof(s, m, n)
                assert proof == (ref_proof(m, data[:n]) if 0 < m < n else [])
                assert merkle.verify_consistency(m, n, ref_mth(data[:m]), cp.root, proof)
        with pytest.raises(ProofError):
            await db.ledger.inclusion_proof(s, 20, 21)
        with pytest.raises(ProofError):
            await db.ledger.inclusion_proof(s, 3, 21)
        with pytest.raises(ProofError):
            await db.ledger.consistency_proof(s, 5, 21)
        with pytest.raises(ProofError):
            await db.ledger.consistency_proof(s, 6, 5)


async def test_proofs_read_a_logarithmic_number_of_nodes_in_one_query(db):
    await submit(db, [entry(i) for i in range(300)])
    await db.seq.integrate(db.sessions, max_batch=1000)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.sessions() as s:
            proof = await db.ledger.inclusion_proof(s, 123, 300)
            cproof = await db.ledger.consistency_proof(s, 77, 300)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 2 and all("ledger_nodes" in st for st in statements)
    assert len(proof) <= 9 and len(cproof) <= 2 * 9


@pytest.mark.parametrize("batches", [[1], [3], [7], [64], [1000], [5, 1, 13, 2]])
async def test_batches_integrate_consistently(db, batches):
    total = 100
    await submit(db, [entry(i) for i in range(total)])
    done, k = 0, 0
    while done < total:
        size = batches[k % len(batches)]
        got = await db.seq.integrate(db.sessions, max_batch=size, max_batches=1)
        assert got == min(size, total - done)
        done += got
        k += 1
    assert await db.seq.integrate(db.sessions, max_batch=10) == 0
    data = tuple(await all_entry_bytes(db))
    assert data == tuple(entry(i).to_bytes() for i in range(total))  # submission order kept
    sizes = await checkpoint_sizes(db)
    assert sizes[-1] == total
    async with db.sessions() as s:
        prev = None
        for n in sizes:
            cp = await db.ledger.checkpoint_at(s, n)
            assert verify_checkpoint(cp.note, db.ledger.verifier_key, ORIGIN).root == cp.root == ref_mth(data[:n])
            if prev is not None:
                proof = await db.ledger.consistency_proof(s, prev.size, n)
                assert merkle.verify_consistency(prev.size, n, prev.root, cp.root, proof)
            prev = cp
        count = len((await s.execute(select(nodes.c.level))).all())
        assert count == 2 * total - total.bit_count()
    rep = await report(db)
    assert rep.ok and rep.size == total and rep.checkpoints == len(sizes) and rep.root == ref_mth(data), rep


async def test_concurrent_submits_and_integrators(db):
    """50 tasks x 20 entries, each entry its own transaction, while two integrators run."""
    tasks_n, per_task = 50, 20
    stop = asyncio.Event()

    async def submitter(t: int) -> None:
        for i in range(per_task):
            async with db.sessions() as s, s.begin():
                await db.ledger.submit(s, entry(i, task=t))
            await asyncio.sleep(0)

    async def integrator() -> int:
        n = 0
        while not stop.is_set():
            n += await db.seq.integrate(db.sessions, max_batch=37)
            await asyncio.sleep(0.005)
        return n

    integrators = [asyncio.create_task(integrator()) for _ in range(2)]
    await asyncio.gather(*(submitter(t) for t in range(tasks_n)))
    stop.set()
    sequenced = sum(await asyncio.gather(*integrators))
    sequenced += await db.seq.integrate(db.sessions, max_batch=500)
    assert sequenced == tasks_n * per_task
    async with db.sessions() as s:
        idx = [i for (i,) in await s.execute(select(entries.c.idx).order_by(entries.c.idx))]
        assert idx == list(range(tasks_n * per_task))  # gap-free
        assert (await s.execute(select(pending.c.id))).first() is None
        cp = await db.ledger.latest_checkpoint(s)
        assert cp.size == tasks_n * per_task
    data = await all_entry_bytes(db)
    assert sorted(data) == sorted(entry(i, task=t).to_bytes() for t in range(tasks_n) for i in range(per_task))
    for t in range(tasks_n):  # each task's entries keep their order
        mine = [d for d in data if f"ORD-{t:03d}-".encode() in d]
        assert mine == [entry(i, task=t).to_bytes() for i in range(per_task)]
    assert cp.root == ref_mth(tuple(data))
    rep = await report(db)
    assert rep.ok and rep.size == tasks_n * per_task, rep


async def test_run_forever(db):
    task = asyncio.create_task(db.seq.run_forever(db.sessions, interval=30))
    try:
        await asyncio.sleep(0.05)
        async with db.sessions() as s, s.begin():
            await db.ledger.submit_many(s, [entry(i) for i in range(5)])
        db.seq.notify()
        for _ in range(200):
            async with db.sessions() as s:
                cp = await db.ledger.latest_checkpoint(s)
            if cp and cp.size == 5:
                break
            await asyncio.sleep(0.02)
        assert cp and cp.size == 5
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


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


# --- tampering: verify_log names the first failing index or checkpoint -------------------------------

N_TAMPER = 37


async def tamper_setup(db: DB) -> list[bytes]:
    await submit(db, [entry(i) for i in range(N_TAMPER)])
    await db.seq.integrate(db.sessions, max_batch=5)  # checkpoints 5, 10, ..., 35, 37
    rep = await report(db)
    assert rep.ok and rep.size == N_TAMPER, rep
    return await all_entry_bytes(db)


async def execute(db: DB, *statements) -> None:
    async with db.sessions() as s, s.begin():
        for st in statements:
            await s.execute(st)


async def shift(db: DB, start: int, by: int) -> None:
    """Renumber entries ``idx >= start`` by ``by`` (through negatives: no transient PK clash)."""
    await execute(
        db,
        update(entries).where(entries.c.idx >= start).values(idx=-entries.c.idx - 1),
        update(entries).where(entries.c.idx < 0).values(idx=-entries.c.idx - 1 + by),
    )


async def test_verify_catches_flipped_byte(db):
    data = await tamper_setup(db)
    changed = bytearray(data[13])
    changed[20] ^= 0x01
    await execute(db, update(entries).where(entries.c.idx == 13).values(entry=bytes(changed)))
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 13 and "altered" in rep.error, rep


async def test_verify_catches_deleted_row(db):
    await tamper_setup(db)
    await execute(db, delete(entries).where(entries.c.idx == 13))
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 13 and "missing" in rep.error, rep


async def test_verify_catches_deleted_row_closed_up(db):
    await tamper_setup(db)
    await execute(db, delete(entries).where(entries.c.idx == 13))
    await shift(db, 14, -1)
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 13, rep


async def test_verify_catches_deleted_last_row(db):
    await tamper_setup(db)
    await execute(db, delete(entries).where(entries.c.idx == N_TAMPER - 1))
    rep = await report(db)
    assert not rep.ok and rep.failed_index == N_TAMPER - 1, rep


async def test_verify_catches_swapped_rows(db):
    data = await tamper_setup(db)
    await execute(
        db,
        update(entries).where(entries.c.idx == 21).values(idx=-1),
        update(entries).where(entries.c.idx == 9).values(idx=21),
        update(entries).where(entries.c.idx == -1).values(idx=9),
    )
    assert (await all_entry_bytes(db))[9] == data[21]
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 9, rep


async def test_verify_catches_swapped_adjacent_entry_bytes(db):
    data = await tamper_setup(db)
    await execute(
        db,
        update(entries).where(entries.c.idx == 16).values(entry=data[17], leaf_hash=merkle.leaf_hash(data[17])),
        update(entries).where(entries.c.idx == 17).values(entry=data[16], leaf_hash=merkle.leaf_hash(data[16])),
    )
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 16, rep


async def test_verify_catches_inserted_row(db):
    await tamper_setup(db)
    await shift(db, 17, +1)
    forged = entry(999).to_bytes()
    await execute(db, insert(entries).values(idx=17, entry=forged, leaf_hash=merkle.leaf_hash(forged), created_at=ledger_log.utcnow()))
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 17, rep


async def test_verify_catches_appended_row(db):
    await tamper_setup(db)
    forged = entry(999).to_bytes()
    await execute(db, insert(entries).values(idx=N_TAMPER, entry=forged, leaf_hash=merkle.leaf_hash(forged), created_at=ledger_log.utcnow()))
    rep = await report(db)
    assert not rep.ok and rep.failed_index == N_TAMPER and "not covered" in rep.error, rep


async def test_verify_catches_altered_node(db):
    await tamper_setup(db)
    await execute(db, update(nodes).where(nodes.c.level == 2, nodes.c.idx == 3).values(hash=b"\x00" * 32))
    rep = await report(db)
    assert not rep.ok and rep.failed_node == (2, 3) and rep.failed_index == 12, rep


async def test_verify_catches_consistent_rewrite_by_checkpoint(db):
    """Entry, leaf hash and every node rewritten to match: only the signed checkpoints can tell."""
    data = await tamper_setup(db)
    data[22] = entry(999).to_bytes()
    await execute(db, update(entries).where(entries.c.idx == 22).values(entry=data[22], leaf_hash=merkle.leaf_hash(data[22])))
    for (lv, ix), h in tree_nodes(data).items():
        await execute(db, update(nodes).where(nodes.c.level == lv, nodes.c.idx == ix).values(hash=h))
    rep = await report(db)
    assert not rep.ok and rep.failed_checkpoint == 25 and rep.failed_index is None, rep


async def test_verify_catches_altered_checkpoint_root(db):
    await tamper_setup(db)
    await execute(db, update(checkpoints).where(checkpoints.c.size == 20).values(root=b"\x11" * 32))
    rep = await report(db)
    assert not rep.ok and rep.failed_checkpoint == 20, rep


async def test_verify_catches_checkpoint_signed_by_another_key(db):
    data = await tamper_setup(db)
    forger = NoteSigner.generate(ORIGIN)
    fake_root = ref_mth(tuple(data[:14]) + (entry(999).to_bytes(),))
    await execute(db, update(checkpoints).where(checkpoints.c.size == 15).values(root=fake_root, note=sign_checkpoint(forger, ORIGIN, 15, fake_root)))
    rep = await report(db)
    assert not rep.ok and rep.failed_checkpoint == 15 and "no signature" in rep.error, rep


async def test_verify_catches_edited_checkpoint_note(db):
    await tamper_setup(db)
    async with db.sessions() as s:
        note = await s.scalar(select(checkpoints.c.note).where(checkpoints.c.size == 30))
    body, sig = note.split("\n\n")
    lines = body.split("\n")
    lines[1] = "31"
    await execute(db, update(checkpoints).where(checkpoints.c.size == 30).values(note="\n".join(lines) + "\n\n" + sig))
    rep = await report(db)
    assert not rep.ok and rep.failed_checkpoint == 30 and "invalid signature" in rep.error, rep


async def test_verify_catches_forged_extra_checkpoint(db):
    data = await tamper_setup(db)
    forger = NoteSigner.generate(ORIGIN)
    root = ref_mth(tuple(data[:12]))  # the right root, but not signed by the ledger's key
    await execute(db, insert(checkpoints).values(size=12, root=root, note=sign_checkpoint(forger, ORIGIN, 12, root), created_at=ledger_log.utcnow()))
    rep = await report(db)
    assert not rep.ok and rep.failed_checkpoint == 12, rep


# verify_log checks a block of entries at a time and, where a block differs, goes over it entry by
# entry: whatever the block size, a report must be the one the entry-by-entry pass gives.

BLOCK_SIZES = (1, 2, 4, 16, 1 << 15)


async def reports_by_block_size(db: DB) -> list[tuple]:
    out = []
    for chunk in BLOCK_SIZES:
        async with db.sessions() as s:
            r = await verify_log(s, db.ledger.verifier_key, origin=ORIGIN, chunk=chunk)
        out.append((r.ok, r.error, r.failed_index, r.failed_checkpoint, r.failed_node, r.size, r.nodes, r.checkpoints, r.root))
    return out


async def test_verify_reports_the_same_for_any_block_size(db):
    data = await tamper_setup(db)
    (clean, *others) = await reports_by_block_size(db)
    n = N_TAMPER
    assert clean == (True, None, None, None, None, n, 2 * n - n.bit_count(), 8, ref_mth(tuple(data))), clean
    assert all(o == clean for o in others), others
    leaf13 = merkle.leaf_hash(data[13])
    node23 = tree_nodes(data)[(2, 3)]
    async with db.sessions() as s:
        root20 = await s.scalar(select(checkpoints.c.root).where(checkpoints.c.size == 20))
    changed = bytearray(data[13])
    changed[20] ^= 0x01
    for tamper, undo in [
        (update(entries).where(entries.c.idx == 13).values(entry=bytes(changed)), update(entries).where(entries.c.idx == 13).values(entry=data[13])),
        (update(entries).where(entries.c.idx == 13).values(leaf_hash=flip(leaf13)), update(entries).where(entries.c.idx == 13).values(leaf_hash=leaf13)),
        (update(nodes).where(nodes.c.level == 2, nodes.c.idx == 3).values(hash=b"\x00" * 32), update(nodes).where(nodes.c.level == 2, nodes.c.idx == 3).values(hash=node23)),
        (update(checkpoints).where(checkpoints.c.size == 20).values(root=b"\x11" * 32), update(checkpoints).where(checkpoints.c.size == 20).values(root=root20)),
        (delete(nodes).where(nodes.c.level == 0, nodes.c.idx == 33), insert(nodes).values(level=0, idx=33, hash=merkle.leaf_hash(data[33]))),
    ]:
        await execute(db, tamper)
        (first, *others) = await reports_by_block_size(db)
        assert not first[0] and all(o == first for o in others), (tamper, first, others)
        await execute(db, undo)
    assert (await reports_by_block_size(db))[0] == clean


async def test_verify_checkpoint_at_every_size(db):
    data = [entry(i).to_bytes() for i in range(21)]
    await submit(db, [entry(i) for i in range(21)])
    await db.seq.integrate(db.sessions, max_batch=1)
    (clean, *others) = await reports_by_block_size(db)
    assert clean[:3] == (True, None, None) and clean[7] == 21 and clean[8] == ref_mth(tuple(data)), clean
    assert all(o == clean for o in others), others
    forger = NoteSigner.generate(ORIGIN)
    root = ref_mth(tuple(data[:11]))
    await execute(db, update(checkpoints).where(checkpoints.c.size == 11).values(note=sign_checkpoint(forger, ORIGIN, 11, root)))
    (first, *others) = await reports_by_block_size(db)
    assert first[0] is False and first[3] == 11 and first[5] == 11 and first[7] == 10, first
    assert all(o == first for o in others), others


async def test_verify_through_sqlalchemy_rows_reports_the_same(db, monkeypatch):
    """Drivers other than asyncpg and aiosqlite are read through SQLAlchemy: the same reports."""
    from ledger import audit

    data = await tamper_setup(db)

    async def generic(session, max_level):
        return audit._SqlReader(session)

    changed = bytearray(data[29])
    changed[5] ^= 0x40
    for tamper in [None, update(entries).where(entries.c.idx == 29).values(entry=bytes(changed)), delete(nodes).where(nodes.c.level == 1, nodes.c.idx == 3)]:
        if tamper is not None:
            await execute(db, tamper)
        native = await reports_by_block_size(db)
        with monkeypatch.context() as m:
            m.setattr(audit, "_reader", generic)
            assert await reports_by_block_size(db) == native
        assert native[0][0] == (tamper is None), native[0]


async def rewrite_in_order(db: DB, table, keys: list[dict], values: list[dict]) -> None:
    """UPDATE the rows one by one, in this order: on PostgreSQL each new row version goes to the end of
    the heap, so that a scan without ORDER BY returns them in this order."""
    for key, vals in zip(keys, values):
        await execute(db, update(table).where(*(table.c[k] == v for k, v in key.items())).values(**vals))


async def test_verify_passes_rows_stored_out_of_index_order(db):
    data = await tamper_setup(db)
    tree = tree_nodes(data)
    idxs = list(range(N_TAMPER - 1, -1, -3))
    await rewrite_in_order(db, entries, [{"idx": i} for i in idxs], [{"entry": data[i]} for i in idxs])
    ids = sorted(tree, reverse=True)[::2]
    await rewrite_in_order(db, nodes, [{"level": lv, "idx": ix} for lv, ix in ids], [{"hash": tree[(lv, ix)]} for lv, ix in ids])
    rep = await report(db)
    assert rep.ok and rep.root == ref_mth(tuple(data)), rep
    assert all(r[0] for r in await reports_by_block_size(db))


async def test_verify_catches_swapped_entry_bytes_stored_in_swapped_order(db):
    """Rows 16 and 17 swap contents, and the heap order swaps too: read in storage order, the bytes
    would look right. Only their indexes tell."""
    data = await tamper_setup(db)
    await rewrite_in_order(db, entries, [{"idx": 17}, {"idx": 16}], [
        {"entry": data[16], "leaf_hash": merkle.leaf_hash(data[16])}, {"entry": data[17], "leaf_hash": merkle.leaf_hash(data[17])}])
    rep = await report(db)
    assert not rep.ok and rep.failed_index == 16, rep
    (first, *others) = await reports_by_block_size(db)
    assert first[2] == 16 and all(o == first for o in others), (first, others)


async def test_verify_catches_swapped_nodes_stored_in_swapped_order(db):
    data = await tamper_setup(db)
    tree = tree_nodes(data)
    await rewrite_in_order(db, nodes, [{"level": 1, "idx": 3}, {"level": 1, "idx": 2}], [{"hash": tree[(1, 2)]}, {"hash": tree[(1, 3)]}])
    for r in await reports_by_block_size(db):
        assert r[:5] == (False, "node (1, 2) covering entries 4..5 does not match its children", 4, None, (1, 2)), r


async def test_verify_catches_node_hashes_split_across_rows(db):
    """Hashes of 31 and 33 bytes that concatenate to the right 64 are still wrong nodes."""
    data = await tamper_setup(db)
    tree = tree_nodes(data)
    h4, h5 = tree[(0, 4)], tree[(0, 5)]
    await execute(db, update(nodes).where(nodes.c.level == 0, nodes.c.idx == 4).values(hash=h4[:31]),
                  update(nodes).where(nodes.c.level == 0, nodes.c.idx == 5).values(hash=h4[31:] + h5))
    for r in await reports_by_block_size(db):
        assert not r[0] and r[2] == 4 and r[4] == (0, 4) and "entry 4 is not the entry the tree holds" in r[1], r
    await execute(db, update(nodes).where(nodes.c.level == 0, nodes.c.idx == 4).values(hash=h4),
                  update(nodes).where(nodes.c.level == 0, nodes.c.idx == 5).values(hash=h5),
                  update(entries).where(entries.c.idx == 8).values(leaf_hash=tree[(0, 8)][:31]),
                  update(entries).where(entries.c.idx == 9).values(leaf_hash=tree[(0, 8)][31:] + tree[(0, 9)]))
    for r in await reports_by_block_size(db):
        assert not r[0] and r[2] == 8 and "entry 8: bytes do not hash to the stored leaf hash" in r[1], r


async def test_sequencer_refuses_a_damaged_right_edge(db):
    await tamper_setup(db)
    await execute(db, update(nodes).where(nodes.c.level == 5, nodes.c.idx == 0).values(hash=b"\x00" * 32))
    await submit(db, [entry(100)])
    with pytest.raises(LedgerCorruptedError):
        await db.seq.integrate(db.sessions)
    async with db.sessions() as s:  # nothing was taken from pending
        assert len((await s.execute(select(pending.c.id))).all()) == 1
