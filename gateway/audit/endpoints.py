"""The ledger, published: checkpoint, verifier key, entries, proofs, and the trace of a declaration.

Every caller is authenticated. The operator and the regulators read every entry; a firm reads the
checkpoint, the key and every proof (they hold only hashes), and the entries filed under its own
codes. Proof answers have the shape ``swx ledger check-proof`` reads, so a firm can save one and
check it offline with the published key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse

from ledger import Ledger

from ..auth import Caller
from ..db import ViewSession
from ..problems import responses
from . import service
from .errors import EntryNotFound, LedgerQueryInvalid, NoCheckpoint
from .service import MAX_PAGE, visible_topics
from .trace import trace

router = APIRouter(prefix="/v1", tags=["ledger"])

Index = Annotated[int, Query(ge=0, description="a 0-based entry index")]
READ = responses(NoCheckpoint, LedgerQueryInvalid)


def _ledger(request: Request) -> Ledger:
    return request.app.state.audit.ledger


@router.get("/ledger/checkpoint", response_class=PlainTextResponse, summary="The latest signed checkpoint (C2SP signed note)",
            responses={**responses(NoCheckpoint),
                       200: {"content": {"text/plain": {"example": "swx.example/ledger\n1234\nq7v...=\n\n— swx.example/ledger Az3...\n"}}}})
async def checkpoint(request: Request, caller: Caller, session: ViewSession) -> PlainTextResponse:
    """Origin line, tree size and base64 root hash, signed with Ed25519 (check it against `GET /v1/ledger/key`)."""
    cp = await service.checkpoint(session, _ledger(request))
    return PlainTextResponse(cp.note, headers={"Cache-Control": "no-cache"})


@router.get("/ledger/key", response_class=PlainTextResponse, summary="The note verifier key of the checkpoints",
            responses=responses())
async def key(request: Request, caller: Caller) -> PlainTextResponse:
    """`<name>+<key id>+<base64 key>` (the Go `sumdb/note` verifier format)."""
    return PlainTextResponse(_ledger(request).verifier_key + "\n")


@router.get("/ledger/entries", summary="Entries by index range (a firm sees its own)", responses=READ)
async def entries(
    request: Request, caller: Caller, session: ViewSession, start: Index = 0,
    end: Annotated[int | None, Query(ge=1, description=f"one past the last index; at most start + {MAX_PAGE}")] = None,
) -> dict:
    """Entries with `start <= index < end` that are covered by the latest checkpoint. `entryText` is the
    exact canonical JSON that was hashed: its leaf hash is SHA-256(0x00 ‖ entryText)."""
    return await service.entries(session, _ledger(request), caller, start, end)


@router.get("/ledger/proof/inclusion", summary="Inclusion proof of one entry (RFC 9162)",
            responses=responses(NoCheckpoint, LedgerQueryInvalid, EntryNotFound))
async def inclusion(
    request: Request, caller: Caller, session: ViewSession,
    index: Annotated[int | None, Query(ge=0, description="the entry's index")] = None,
    hash: Annotated[str | None, Query(description="or the entry's base64 leaf hash")] = None,
    size: Annotated[int | None, Query(ge=1, description="tree size; the latest checkpoint's when absent")] = None,
) -> dict:
    """The audit path from the entry to the root of the tree of `size` entries. With the latest
    checkpoint's size (the default) the answer carries that checkpoint and the verifier key, and is a
    bundle `swx ledger check-proof` verifies offline; the entry's text is included when you may read it."""
    return await service.inclusion(session, _ledger(request), caller, index, hash, size)


@router.get("/ledger/proof/consistency", summary="Consistency proof between two tree sizes (RFC 9162)", responses=READ)
async def consistency(
    request: Request, caller: Caller, session: ViewSession,
    first: Annotated[int, Query(ge=0, description="the older tree size")],
    second: Annotated[int | None, Query(ge=0, description="the newer tree size; the latest checkpoint's when absent")] = None,
) -> dict:
    """Proof that the tree of `first` entries is a prefix of the tree of `second`: nothing was changed or
    removed in between. Signed checkpoints of either size are included where they exist."""
    return await service.consistency(session, _ledger(request), first, second)


@router.get("/trace", summary="Trace one declaration through the ledger (追溯)", responses=responses(NoCheckpoint))
async def trace_declaration(
    request: Request, caller: Caller, session: ViewSession,
    ebp_code: Annotated[str, Query(alias="ebpCode", min_length=1, max_length=18, description="the platform's code")],
    order_no: Annotated[str, Query(alias="orderNo", min_length=1, max_length=60, description="the order number")],
) -> dict:
    """Every ledger entry about one declaration -- its order, payment, waybill and list, their state
    changes, routes, deliveries and receipts, and the registration versions they relied on -- in time
    order, each with its inclusion proof against the checkpoint given. Entries appear once sequenced
    (within about a second of the event). A firm sees the entries filed under its own codes."""
    ledger = _ledger(request)
    cp = await service.checkpoint(session, ledger)
    return await trace(session, ledger, cp, ebp_code, order_no, visible_topics(caller))
