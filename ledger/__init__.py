"""Tamper-evident audit ledger (Merkle-tree transparency log). Knows nothing of HTTP or the gateway."""
