"""Tamper-evident audit ledger (Merkle-tree transparency log). Knows nothing of HTTP or the gateway.

An append-only log per RFC 9162 (Certificate Transparency v2) §2.1 with C2SP signed-note checkpoints:

* ``entries``    -- :class:`Entry`, canonical JSON, the personal-data guard;
* ``merkle``     -- hashing, frontier, proof generation and RFC verification (pure);
* ``checkpoint`` -- Ed25519 signed notes and checkpoints, ``load_or_create_key``;
* ``store``      -- the ``ledger_*`` tables (own ``MetaData``), ``create_all``;
* ``log``        -- :class:`Ledger`: ``submit`` in the caller's transaction, proofs, entries, bundles;
* ``tree``       -- ``fetch_nodes``: stored subtree hashes, read by the proofs and the sequencer;
* ``sequencer``  -- :class:`Sequencer`: batches pending rows into the tree, signs checkpoints;
* ``integrity``  -- ``verify_log``: full re-verification of the stored log;
* ``verify``     -- offline verifier (no database import), ``check_proof_file``.

Importing ``ledger`` (or ``ledger.verify``) does not import SQLAlchemy; the database names below are
loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .canonical import CanonicalJSONError, canonical_json, parse_canonical
from .checkpoint import (
    Checkpoint,
    NoteError,
    NoteSigner,
    NoteVerifier,
    load_or_create_key,
    sign_checkpoint,
    verify_checkpoint,
)
from .entries import (
    PERSONAL_FIELDS,
    Entry,
    EntryError,
    PersonalDataError,
    assert_no_personal_data,
    utc_now,
)
from .merkle import (
    EMPTY_ROOT,
    ProofError,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

_LAZY = {
    "Ledger": "log",
    "LoggedEntry": "log",
    "Submitted": "log",
    "submit": "log",
    "submit_many": "log",
    "inclusion_proof": "log",
    "consistency_proof": "log",
    "find": "log",
    "entries_at": "log",
    "indexes_for": "log",
    "topics_of": "log",
    "latest_checkpoint": "log",
    "checkpoint_at": "log",
    "tree_size": "log",
    "root_at": "log",
    "inclusion_bundle": "log",
    "consistency_bundle": "log",
    "Sequencer": "sequencer",
    "LedgerCorruptedError": "sequencer",
    "verify_log": "integrity",
    "VerifyReport": "integrity",
    "metadata": "store",
    "create_all": "store",
    "drop_all": "store",
}

__all__ = [
    "EMPTY_ROOT",
    "PERSONAL_FIELDS",
    "CanonicalJSONError",
    "Checkpoint",
    "Entry",
    "EntryError",
    "Ledger",
    "LedgerCorruptedError",
    "LoggedEntry",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "PersonalDataError",
    "ProofError",
    "Sequencer",
    "Submitted",
    "VerifyReport",
    "assert_no_personal_data",
    "canonical_json",
    "checkpoint_at",
    "consistency_bundle",
    "consistency_proof",
    "create_all",
    "drop_all",
    "entries_at",
    "find",
    "inclusion_bundle",
    "inclusion_proof",
    "indexes_for",
    "latest_checkpoint",
    "leaf_hash",
    "load_or_create_key",
    "metadata",
    "node_hash",
    "parse_canonical",
    "root_at",
    "sign_checkpoint",
    "submit",
    "submit_many",
    "topics_of",
    "tree_size",
    "utc_now",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
]  # fmt: skip
assert set(_LAZY) <= set(__all__)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ledger' has no attribute {name!r}")
