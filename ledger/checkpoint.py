"""Signed checkpoints: the C2SP ``tlog-checkpoint`` body inside a C2SP ``signed-note``, Ed25519 keys.

A checkpoint body is three lines, each ending in a newline::

    swx.example/ledger
    1234
    <base64 of the 32-byte root hash>

The signed note is the body, a blank line, and one line per signature::

    — <key name> <base64(key hash (4 bytes) || Ed25519 signature (64 bytes))>

where the line starts with an em dash (U+2014) and a space, the signature covers the body bytes, and
the key hash is the first four bytes of SHA-256(name || "\\n" || 0x01 || public key). A verifier key
is published as ``<name>+<key hash as 8 hex digits>+<base64(0x01 || public key)>``; the private key
file holds ``PRIVATE+KEY+<name>+<key hash>+<base64(0x01 || seed)>`` (the Go ``note`` package formats,
so ``golang.org/x/mod/sumdb/note`` and other C2SP tooling accept both).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

log = logging.getLogger("swx.ledger")

ALG_ED25519 = 0x01
DEFAULT_ORIGIN = "swx.example/ledger"
SIG_PREFIX = "\u2014 "  # em dash, space
_NAME = re.compile(r"[^\s+]+")
_SIZE = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A signed note or checkpoint is malformed, or no trusted signature verifies it."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise NoteError(f"bad base64 {text!r}") from exc


def key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID: first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise NoteError(f"key name {name!r} must be non-empty without spaces or '+'")
    return name


def _raw_public(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


class NoteVerifier:
    """An Ed25519 verifier for signed notes, from a ``name+hash+base64`` verifier key string."""

    def __init__(self, name: str, public_key: bytes) -> None:
        self.name = _check_name(name)
        if len(public_key) != 32:
            raise NoteError("an Ed25519 public key has 32 bytes")
        self.public_key = public_key
        self.key_hash = key_hash(name, public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_string(cls, vkey: str) -> NoteVerifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key reads name+hexkeyhash+base64key")
        name, hash_hex, b64 = parts
        raw = _unb64(b64)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("only Ed25519 verifier keys (algorithm 0x01) are supported")
        v = cls(name, raw[1:])
        if not re.fullmatch(r"[0-9a-f]{8}", hash_hex) or bytes.fromhex(hash_hex) != v.key_hash:
            raise NoteError("verifier key hash does not match its name and key")
        return v

    def __str__(self) -> str:
        return f"{self.name}+{self.key_hash.hex()}+{_b64(bytes([ALG_ED25519]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, message)
            return True
        except InvalidSignature:
            return False


class NoteSigner:
    """An Ed25519 signed-note signer with a key name (by convention the log's origin)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self.name = _check_name(name)
        self._key = private_key
        self.verifier = NoteVerifier(name, _raw_public(private_key.public_key()))

    @classmethod
    def generate(cls, name: str) -> NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_key_string(cls, skey: str) -> NoteSigner:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key reads PRIVATE+KEY+name+hexkeyhash+base64key")
        name, hash_hex, b64 = parts[2:]
        raw = _unb64(b64)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("only Ed25519 signer keys (algorithm 0x01) are supported")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if hash_hex != signer.verifier.key_hash.hex():
            raise NoteError("signer key hash does not match its name and key")
        return signer

    def key_string(self) -> str:
        seed = self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_hash.hex()}+{_b64(bytes([ALG_ED25519]) + seed)}"

    def verifier_key(self) -> str:
        """The public verifier key string to publish: ``name+hexkeyhash+base64(0x01 || pubkey)``."""
        return str(self.verifier)

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which must end in a newline and contain no blank line)."""
        _check_text(text)
        sig = self.verifier.key_hash + self._key.sign(text.encode("utf-8"))
        return f"{text}\n{SIG_PREFIX}{self.name} {_b64(sig)}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise NoteError("note text must end in a newline and contain no blank line")
    if any((ord(c) < 0x20 and c != "\n") or ord(c) == 0x7F for c in text):
        raise NoteError("note text must not contain control characters other than newline")


@dataclass(frozen=True)
class Signature:
    name: str
    key_hash: bytes
    signature: bytes


def split_note(note: str) -> tuple[str, list[Signature]]:
    """Split a signed note into its text and its parsed signature lines (nothing verified yet)."""
    if not isinstance(note, str):
        raise NoteError("a signed note is text")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise NoteError("signed note has no blank line before its signatures")
    text, sig_block = note[: cut + 1], note[cut + 2 :]
    _check_text(text)
    if not sig_block.endswith("\n"):
        raise NoteError("signature lines must end in a newline")
    sigs: list[Signature] = []
    for line in sig_block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"malformed signature line {line!r}")
        fields = line[len(SIG_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise NoteError(f"malformed signature line {line!r}")
        name, raw = _check_name(fields[0]), _unb64(fields[1])
        if len(raw) < 5:
            raise NoteError(f"signature too short in {line!r}")
        sigs.append(Signature(name, raw[:4], raw[4:]))
    if not sigs:
        raise NoteError("signed note carries no signature")
    return text, sigs


def open_note(note: str, verifier: NoteVerifier | str) -> str:
    """The note's text if a signature by ``verifier`` verifies it; ``NoteError`` otherwise.

    Signatures by other keys are ignored, as the signed-note spec asks; a signature line naming this
    key (same name and key hash) that does not verify is an error.
    """
    v = NoteVerifier.from_string(verifier) if isinstance(verifier, str) else verifier
    text, sigs = split_note(note)
    good = False
    for s in sigs:
        if s.name == v.name and s.key_hash == v.key_hash:
            if not v.verify(text.encode("utf-8"), s.signature):
                raise NoteError(f"invalid signature by key {v.name}+{v.key_hash.hex()}")
            good = True
    if not good:
        raise NoteError(f"no signature by key {v.name}+{v.key_hash.hex()}")
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the origin, the tree size and its root; ``note`` is the signed note, if any."""

    origin: str
    size: int
    root: bytes
    note: str | None = None
    extensions: tuple[str, ...] = field(default=())

    def body(self) -> str:
        return format_checkpoint(self.origin, self.size, self.root, self.extensions)


def format_checkpoint(origin: str, size: int, root: bytes, extensions: tuple[str, ...] = ()) -> str:
    if not origin or "\n" in origin:
        raise NoteError("the origin is one non-empty line")
    if size < 0 or len(root) != 32:
        raise NoteError("a checkpoint needs a size >= 0 and a 32-byte root")
    return "".join(f"{line}\n" for line in (origin, str(size), _b64(root), *extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body (the note text, without signatures)."""
    if not text.endswith("\n"):
        raise NoteError("checkpoint body must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint body needs origin, size and root lines")
    origin, size_text, root_text, *ext = lines
    if not origin:
        raise NoteError("checkpoint origin is empty")
    if not _SIZE.fullmatch(size_text):
        raise NoteError(f"checkpoint size {size_text!r} is not a decimal without leading zeros")
    root = _unb64(root_text)
    if len(root) != 32 or _b64(root) != root_text:
        raise NoteError("checkpoint root is not the base64 of 32 bytes")
    if any(not e for e in ext):
        raise NoteError("checkpoint extension lines must not be empty")
    return Checkpoint(origin, int(size_text), root, extensions=tuple(ext))


def sign_checkpoint(signer: NoteSigner, origin: str, size: int, root: bytes) -> str:
    """The signed note of the checkpoint ``(origin, size, root)``."""
    return signer.sign(format_checkpoint(origin, size, root))


def verify_checkpoint(note: str, verifier: NoteVerifier | str, origin: str | None = None) -> Checkpoint:
    """Open a signed checkpoint with ``verifier`` and parse it; check the origin when one is given."""
    cp = parse_checkpoint(open_note(note, verifier))
    if origin is not None and cp.origin != origin:
        raise NoteError(f"checkpoint origin {cp.origin!r} is not the expected {origin!r}")
    return Checkpoint(cp.origin, cp.size, cp.root, note, cp.extensions)


def load_or_create_key(path: str | os.PathLike[str], name: str | None = None) -> NoteSigner:
    """Load the ledger's Ed25519 signer key, generating it (mode 0600) on first start.

    ``name`` is the key name for a new key (conventionally the log origin; default
    ``swx.example/ledger``); for an existing key it must match the stored name if given. Safe if
    several processes start at once: the file appears atomically and whoever loses the race loads
    the winner's key.
    """
    p = Path(path)
    if not p.exists():
        signer = NoteSigner.generate(name or DEFAULT_ORIGIN)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".ledger-key-")
        try:
            with os.fdopen(fd, "wb") as fh:
                os.fchmod(fh.fileno(), 0o600)
                fh.write((signer.key_string() + "\n").encode("ascii"))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, p)  # atomic; fails if another process created the key meanwhile
                log.info("generated ledger signing key %s at %s", signer.verifier_key(), p)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    mode = p.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("ledger signing key %s is accessible to group/others (mode %o); chmod 600 it", p, mode & 0o777)
    signer = NoteSigner.from_key_string(p.read_text("ascii"))
    if name is not None and signer.name != name:
        raise NoteError(f"ledger key at {p} is named {signer.name!r}, not {name!r}")
    return signer
