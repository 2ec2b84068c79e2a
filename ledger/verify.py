"""Offline verification: checkpoints, inclusion and consistency proofs -- no database needed.

Imports only the pure modules (``merkle``, ``checkpoint``, ``canonical``) and ``cryptography``, so an
auditor can check a proof bundle exported by swx with nothing but this package::

    python -m ledger.verify bundle.json [--key 'swx.example/ledger+1a2b3c4d+AT...']

An inclusion bundle is ``{"checkpoint", "verifierKey", "entry" (canonical JSON text) or "leafHash",
"index", "size", "proof": [base64...]}``; a consistency bundle is ``{"checkpoint", "verifierKey",
"first", "second", "firstRoot", "secondRoot", "proof", optional "firstCheckpoint"}``. Hashes are
standard base64. The proof's tree size must be the signed checkpoint's size.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .canonical import CanonicalJSONError, parse_canonical
from .checkpoint import Checkpoint, NoteError, NoteVerifier, verify_checkpoint
from .merkle import leaf_hash as _leaf_hash
from .merkle import verify_consistency, verify_inclusion

__all__ = [
    "CheckResult",
    "check_bundle",
    "check_proof_file",
    "verify_checkpoint",
    "verify_consistency_proof",
    "verify_inclusion_proof",
]


def _hash(value: bytes | str, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    else:
        try:
            raw = base64.b64decode(str(value).encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise ValueError(f"{what} is not base64") from exc
    if len(raw) != 32:
        raise ValueError(f"{what} is not a 32-byte hash")
    return raw


def verify_inclusion_proof(
    *,
    index: int,
    size: int,
    proof: Sequence[bytes | str],
    root: bytes | str,
    entry: bytes | str | None = None,
    leaf_hash: bytes | str | None = None,
) -> bool:
    """Whether ``proof`` puts the entry (its bytes, or its leaf hash) at ``index`` in the tree (size, root).

    Hashes may be raw bytes or base64 text; ``entry`` may be bytes or the canonical JSON text.
    """
    if entry is not None:
        leaf = _leaf_hash(entry.encode("utf-8") if isinstance(entry, str) else bytes(entry))
        if leaf_hash is not None and _hash(leaf_hash, "leaf hash") != leaf:
            return False
    elif leaf_hash is not None:
        leaf = _hash(leaf_hash, "leaf hash")
    else:
        raise ValueError("give the entry or its leaf hash")
    return verify_inclusion(leaf, index, size, [_hash(p, "proof hash") for p in proof], _hash(root, "root"))


def verify_consistency_proof(
    first: int, second: int, first_root: bytes | str, second_root: bytes | str, proof: Sequence[bytes | str]
) -> bool:
    """Whether ``proof`` shows the tree (second, second_root) to extend the tree (first, first_root)."""
    return verify_consistency(
        first, second, _hash(first_root, "first root"), _hash(second_root, "second root"), [_hash(p, "proof hash") for p in proof]
    )


@dataclass
class CheckResult:
    """Outcome of checking a bundle: ``ok`` and the human-readable report (``str(result)``)."""

    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)

    def fail(self, line: str) -> CheckResult:
        self.ok = False
        self.lines.append(f"FAIL: {line}")
        return self

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return "\n".join([*self.lines, f"result: {'OK' if self.ok else 'FAILED'}"])


def _int(bundle: dict[str, Any], key: str) -> int:
    value = bundle.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key!r} must be a non-negative integer")
    return value


def check_bundle(bundle: dict[str, Any], trusted_key: str | None = None, origin: str | None = None) -> CheckResult:
    """Check a proof bundle (see module doc). ``trusted_key`` is the verifier key you obtained
    independently; without it the bundle's own ``verifierKey`` is used and the report says so."""
    r = CheckResult()
    try:
        if not isinstance(bundle, dict):
            return r.fail("a proof bundle is a JSON object")
        key_text = trusted_key or bundle.get("verifierKey")
        if not isinstance(key_text, str):
            return r.fail("no verifier key (give one, or put verifierKey in the bundle)")
        try:
            verifier = NoteVerifier.from_string(key_text)
        except NoteError as exc:
            return r.fail(f"verifier key: {exc}")
        if trusted_key and bundle.get("verifierKey") not in (None, trusted_key):
            r.say("note: the bundle names a different verifier key than the trusted one; using the trusted one")
        try:
            cp: Checkpoint = verify_checkpoint(str(bundle.get("checkpoint", "")), verifier, origin)
        except NoteError as exc:
            return r.fail(f"checkpoint: {exc}")
        r.say(f"checkpoint: origin {cp.origin}, size {cp.size}, root {base64.b64encode(cp.root).decode()}")
        r.say(f"checkpoint signature: OK (key {verifier})")
        if not trusted_key:
            r.say("note: key taken from the bundle itself; compare it with the key swx publishes")
        did = False
        if "index" in bundle:
            did = True
            _check_inclusion(r, bundle, cp)
        if "first" in bundle:
            did = True
            _check_consistency(r, bundle, cp, verifier)
        if not did:
            r.say("note: the bundle holds no proof (neither 'index' nor 'first'); only the checkpoint was checked")
    except (ValueError, TypeError) as exc:
        return r.fail(str(exc))
    return r


def _check_inclusion(r: CheckResult, bundle: dict[str, Any], cp: Checkpoint) -> None:
    index, size = _int(bundle, "index"), _int(bundle, "size")
    proof = bundle.get("proof")
    if not isinstance(proof, list):
        raise TypeError("'proof' must be a list of base64 hashes")
    if size != cp.size:
        r.fail(f"proof is for tree size {size}, the signed checkpoint is for size {cp.size}")
        return
    entry = bundle.get("entry")
    if entry is not None:
        if not isinstance(entry, str):
            raise TypeError("'entry' must be the entry's canonical JSON text")
        try:
            obj = parse_canonical(entry)
            summary = {k: obj[k] for k in ("kind", "time", "actor", "subject") if isinstance(obj, dict) and k in obj}
            r.say(f"entry {index}: {json.dumps(summary, ensure_ascii=False, sort_keys=True)}")
        except CanonicalJSONError as exc:
            r.fail(f"entry text is not canonical JSON ({exc}); its bytes would not be the logged ones")
            return
        leaf = _leaf_hash(entry.encode("utf-8"))
        if "leafHash" in bundle and _hash(bundle["leafHash"], "leafHash") != leaf:
            r.fail("leafHash does not match the entry")
            return
    elif "leafHash" in bundle:
        leaf = _hash(bundle["leafHash"], "leafHash")
    else:
        raise ValueError("the bundle needs 'entry' or 'leafHash'")
    if verify_inclusion(leaf, index, size, [_hash(p, "proof hash") for p in proof], cp.root):
        r.say(f"inclusion: OK -- leaf {base64.b64encode(leaf).decode()} is entry {index} of the {size}-entry tree")
    else:
        r.fail(f"inclusion proof of entry {index} in the tree of size {size} does not verify")


def _check_consistency(r: CheckResult, bundle: dict[str, Any], cp: Checkpoint, verifier: NoteVerifier) -> None:
    first, second = _int(bundle, "first"), _int(bundle, "second")
    proof = bundle.get("proof")
    if not isinstance(proof, list):
        raise TypeError("'proof' must be a list of base64 hashes")
    first_root = _hash(bundle.get("firstRoot", ""), "firstRoot")
    second_root = _hash(bundle.get("secondRoot", ""), "secondRoot")
    if second != cp.size or second_root != cp.root:
        r.fail(f"second tree (size {second}) is not the signed checkpoint (size {cp.size})")
        return
    if "firstCheckpoint" in bundle:
        try:
            old = verify_checkpoint(str(bundle["firstCheckpoint"]), verifier, cp.origin)
        except NoteError as exc:
            r.fail(f"firstCheckpoint: {exc}")
            return
        if old.size != first or old.root != first_root:
            r.fail("firstCheckpoint does not match first/firstRoot")
            return
        r.say(f"first checkpoint: size {first}, signature OK")
    else:
        r.say(f"note: firstRoot is not signed in this bundle; compare it with the checkpoint of size {first} you hold")
    if verify_consistency(first, second, first_root, second_root, [_hash(p, "proof hash") for p in proof]):
        r.say(f"consistency: OK -- the {second}-entry tree extends the {first}-entry tree")
    else:
        r.fail(f"consistency proof from size {first} to size {second} does not verify")


def check_proof_file(path: str | Path, trusted_key: str | None = None, origin: str | None = None) -> CheckResult:
    """Read a JSON proof bundle from ``path`` and check it. ``print(result)``; ``result.ok`` for the exit code."""
    try:
        bundle = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        return CheckResult().fail(f"cannot read {path}: {exc}")
    return check_bundle(bundle, trusted_key, origin)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m ledger.verify", description="Check an swx ledger proof bundle offline.")
    ap.add_argument("bundle", help="JSON proof bundle")
    ap.add_argument("--key", help="trusted verifier key (name+hash+base64); default: the bundle's own")
    ap.add_argument("--origin", help="expected checkpoint origin")
    args = ap.parse_args(argv)
    result = check_proof_file(args.bundle, args.key, args.origin)
    print(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
