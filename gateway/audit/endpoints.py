"""The ledger, published: checkpoint, verifier key, entries, proofs, and the trace of a declaration.

Every caller is authenticated. The operator and the regulators read every entry; a firm reads the
checkpoint, the key and every proof (they hold only hashes), and the entries filed under its own
codes. Proof answers have the shape ``swx ledger check-proof`` reads, so a firm can save one and
check it offline with the published key.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession

from ledger import Checkpoint, Ledger, ProofError, parse_canonical

from ..auth import Caller, Principal
from ..problems import Problem
from .events import party_topic
from .trace import b64, trace

router = APIRouter(prefix="/v1", tags=["ledger"])

MAX_PAGE = 1000
Index = Annotated[int, Query(ge=0, description="a 0-based entry index")]


def _ledger(request: Request) -> Ledger:
    return request.app.state.audit.ledger


def visible_topics(caller: Principal) -> set[str] | None:
    """The topics a caller may read entries under; None means every entry."""
    if caller.is_operator or caller.is_regulator:
        return None
    return {party_topic(c) for c in (caller.codes or (caller.code,)) if c}


async def _checkpoint(session: AsyncSession, ledger: Ledger) -> Checkpoint:
    cp = await ledger.latest_checkpoint(session)
    if cp is None:  # the sequencer signs the empty tree at start, so only a broken start gets here
        raise Problem(503, "Service Unavailable", "the ledger has no signed checkpoint yet; try again shortly")
    return cp


def _bad(detail: str, field: str) -> Problem:
    return Problem(400, "Bad Request", detail, field=field)


@router.get("/ledger/checkpoint", response_class=PlainTextResponse, summary="The latest signed checkpoint (C2SP signed note)",
            responses={200: {"content": {"text/plain": {"example": "swx.example/ledger\n1234\nq7v...=\n\n— swx.example/ledger Az3...\n"}}}})
async def checkpoint(request: Request, caller: Caller) -> PlainTextResponse:
    """Origin line, tree size and base64 root hash, signed with Ed25519 (check it against `GET /v1/ledger/key`)."""
    async with request.app.state.sessions() as session:
        cp = await _checkpoint(session, _ledger(request))
    return PlainTextResponse(cp.note, headers={"Cache-Control": "no-cache"})


@router.get("/ledger/key", response_class=PlainTextResponse, summary="The note verifier key of the checkpoints")
async def key(request: Request, caller: Caller) -> PlainTextResponse:
    """`<name>+<key id>+<base64 key>` (the Go `sumdb/note` verifier format)."""
    return PlainTextResponse(_ledger(request).verifier_key + "\n")


def _item(index: int, data: bytes, leaf: bytes) -> dict[str, Any]:
    return {"index": index, "entry": parse_canonical(data), "entryText": data.decode("utf-8"), "leafHash": b64(leaf)}


@router.get("/ledger/entries", summary="Entries by index range (a firm sees its own)")
async def entries(
    request: Request, caller: Caller, start: Index = 0,
    end: Annotated[int | None, Query(ge=1, description=f"one past the last index; at most start + {MAX_PAGE}")] = None,
) -> dict:
    """Entries with `start <= index < end` that are covered by the latest checkpoint. `entryText` is the
    exact canonical JSON that was hashed: its leaf hash is SHA-256(0x00 ‖ entryText)."""
    ledger = _ledger(request)
    async with request.app.state.sessions() as session:
        size = (await _checkpoint(session, ledger)).size
        end = min(start + MAX_PAGE if end is None else end, size)
        if end is not None and end < start:
            end = start
        if end - start > MAX_PAGE:
            raise _bad(f"at most {MAX_PAGE} entries per request: end must be at most start + {MAX_PAGE}", "end")
        visible = visible_topics(caller)
        if visible is None:
            rows = await ledger.entries(session, start, end)
        else:
            rows = await ledger.entries_at(session, await ledger.indexes_for(session, visible, start=start, end=end))
    return {"treeSize": size, "start": start, "end": end, "entries": [_item(r.index, r.entry, r.leaf_hash) for r in rows]}


@router.get("/ledger/proof/inclusion", summary="Inclusion proof of one entry (RFC 9162)")
async def inclusion(
    request: Request, caller: Caller, index: Annotated[int | None, Query(ge=0, description="the entry's index")] = None,
    hash: Annotated[str | None, Query(description="or the entry's base64 leaf hash")] = None,
    size: Annotated[int | None, Query(ge=1, description="tree size; the latest checkpoint's when absent")] = None,
) -> dict:
    """The audit path from the entry to the root of the tree of `size` entries. With the latest
    checkpoint's size (the default) the answer carries that checkpoint and the verifier key, and is a
    bundle `swx ledger check-proof` verifies offline; the entry's text is included when you may read it."""
    ledger = _ledger(request)
    async with request.app.state.sessions() as session:
        cp = await _checkpoint(session, ledger)
        if index is None:
            if hash is None:
                raise _bad("give the entry's index, or its leaf hash as hash=", "index")
            try:
                leaf = base64.b64decode(hash, validate=True)
            except (binascii.Error, ValueError):
                raise _bad("hash must be a standard base64 SHA-256 leaf hash", "hash") from None
            found = [i for i in await ledger.find(session, leaf) if i < cp.size]
            if not found:
                raise Problem(404, "Not Found", "no sequenced entry has that leaf hash (entries are sequenced within seconds)")
            index = found[0]
        size = size or cp.size
        if size > cp.size:
            raise _bad(f"size {size} is beyond the latest checkpoint ({cp.size} entries)", "size")
        if index >= size:
            raise _bad(f"index {index} is not below size {size}", "index")
        proof = await ledger.inclusion_proof(session, index, size)
        (row,) = await ledger.entries_at(session, [index])
        out: dict[str, Any] = {
            "index": index, "size": size, "leafHash": b64(row.leaf_hash), "proof": [b64(h) for h in proof],
            "rootHash": b64(await ledger.root_at(session, size)), "verifierKey": ledger.verifier_key,
        }
        signed = cp if size == cp.size else await ledger.checkpoint_at(session, size)
        if signed is not None:
            out["checkpoint"] = signed.note
        visible = visible_topics(caller)
        if visible is None or (await ledger.topics_of(session, [index]))[index] & visible:
            out["entry"] = row.entry.decode("utf-8")
    return out


@router.get("/ledger/proof/consistency", summary="Consistency proof between two tree sizes (RFC 9162)")
async def consistency(
    request: Request, caller: Caller, first: Annotated[int, Query(ge=0, description="the older tree size")],
    second: Annotated[int | None, Query(ge=0, description="the newer tree size; the latest checkpoint's when absent")] = None,
) -> dict:
    """Proof that the tree of `first` entries is a prefix of the tree of `second`: nothing was changed or
    removed in between. Signed checkpoints of either size are included where they exist."""
    ledger = _ledger(request)
    async with request.app.state.sessions() as session:
        cp = await _checkpoint(session, ledger)
        second = cp.size if second is None else second
        if second > cp.size:
            raise _bad(f"second ({second}) is beyond the latest checkpoint ({cp.size} entries)", "second")
        if first > second:
            raise _bad(f"first ({first}) must not exceed second ({second})", "first")
        try:
            proof = await ledger.consistency_proof(session, first, second)
        except ProofError as exc:
            raise _bad(str(exc), "first") from None
        out: dict[str, Any] = {
            "first": first, "second": second, "proof": [b64(h) for h in proof],
            "firstRoot": b64(await ledger.root_at(session, first)), "secondRoot": b64(await ledger.root_at(session, second)),
            "verifierKey": ledger.verifier_key,
        }
        new = cp if second == cp.size else await ledger.checkpoint_at(session, second)
        if new is not None:
            out["checkpoint"] = new.note
        old = await ledger.checkpoint_at(session, first)
        if old is not None:
            out["firstCheckpoint"] = old.note
    return out


@router.get("/trace", summary="Trace one declaration through the ledger (追溯)")
async def trace_declaration(
    request: Request, caller: Caller,
    ebp_code: Annotated[str, Query(alias="ebpCode", min_length=1, max_length=18, description="the platform's code")],
    order_no: Annotated[str, Query(alias="orderNo", min_length=1, max_length=60, description="the order number")],
) -> dict:
    """Every ledger entry about one declaration -- its order, payment, waybill and list, their state
    changes, routes, deliveries and receipts, and the registration versions they relied on -- in time
    order, each with its inclusion proof against the checkpoint given. Entries appear once sequenced
    (within about a second of the event). A firm sees the entries filed under its own codes."""
    ledger = _ledger(request)
    async with request.app.state.sessions() as session:
        cp = await _checkpoint(session, ledger)
        return await trace(session, ledger, cp, ebp_code, order_no, visible_topics(caller))
