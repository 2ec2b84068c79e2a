"""What the published ledger refuses (answered as RFC 9457 problems at the edge)."""

from __future__ import annotations

from ..errors import BadRequest, NotFound, Unavailable


class NoCheckpoint(Unavailable):
    type = "no-checkpoint"
    description = "The ledger has not signed a checkpoint yet (it does within a second of starting)."


class LedgerQueryInvalid(BadRequest):
    type = "ledger-query-invalid"
    description = "An index, size or hash is outside the signed tree, or malformed; `field` names it."


class EntryNotFound(NotFound):
    type = "entry-not-found"
    description = "No sequenced entry has that leaf hash (entries are sequenced within seconds of the event)."
