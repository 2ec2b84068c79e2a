"""Signed notes (golang.org/x/mod/sumdb/note) and C2SP checkpoints, and the ledger's signing key."""

from __future__ import annotations

import base64
import hashlib
import stat

import pytest

from ledger import NoteError, NoteSigner, NoteVerifier, load_or_create_key, verify_checkpoint
from ledger.checkpoint import key_hash, parse_checkpoint, sign_checkpoint, split_note
from tests.fixtures.ledger import ORIGIN, sha

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
