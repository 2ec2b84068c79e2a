"""One declaration across all regulators: its documents, each regulator's latest verdict, one state.

Import and export (CEB.md §8.4) each have their documents and their states; the export ones follow
the import ones below (``export_declaration``).

A declaration is the order (``ebpCode``, ``orderNo``) and what hangs on it: the payment and the list
that name the same order, the waybill the list names (with its status updates), and any
cancellation or return. Its overall ``state``:

* ``rejected``   -- a regulator refused one of its documents (100, or a negative code); ``reasons`` say why;
* ``cancelled``  -- customs accepted a cancellation of its list (ours: the standard has no word for it);
* ``review``     -- customs holds the list for manual review (300);
* ``inspection`` -- inspection (or customs) holds it for inspection (500);
* ``released``   -- customs released the list (800) and nothing holds it;
* ``waiting``    -- anything else: documents still to come, or verdicts still to come.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from lxml import etree
from sqlalchemy.ext.asyncio import AsyncSession

from kit.times import iso
from schemas.catalog import CEB_NS

from ..auth import Principal
from . import repository
from .errors import DeclarationNotFound, SummaryNotFound
from .repository import EXPORT_KINDS, Declared

# The order's amounts, shown so that regulators can check limits and tax (amounts, not personal data).
ORDER_AMOUNTS = ("goodsValue", "freight", "discount", "taxTotal", "acturalPaid", "currency")



class DeclarationState(StrEnum):
    WAITING = "waiting"
    REVIEW = "review"
    INSPECTION = "inspection"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    RELEASED = "released"
    DEPARTED = "departed"  # export: the list closed (899) on departure
    RETURNED = "returned"  # export: goods came back (fully or partly) after release


CORE = ("order", "payment", "waybill", "inventory")
HOLDS = {"300": DeclarationState.REVIEW, "500": DeclarationState.INSPECTION}

def _refused(status: str) -> bool:
    return status == "100" or status.startswith("-")


async def readable_declaration(session: AsyncSession, caller: Principal, ebp_code: str, order_no: str) -> dict:
    """The declaration, for the operator, the regulators and the firms named in its documents.

    One statement reads it all (``repository.declaration``), the access check folded in; a firm named
    in none of its documents learns nothing, not even that it exists."""
    everyone = caller.is_operator or caller.is_regulator
    read = await repository.declaration(session, ebp_code, order_no,
                                        None if everyone else (caller.codes or (caller.code or "",)))
    if not read.documents or not (everyone or read.named):
        raise DeclarationNotFound(f"no declaration for order {order_no} of platform {ebp_code} that you may read")
    return declaration(ebp_code, order_no, read)


def _document(d, read: Declared) -> dict[str, Any]:
    return {
        "kind": d.kind, "key": d.business_key, "status": d.status, "version": d.version, "filedBy": d.owner_code,
        "preNo": d.pre_no, "invtNo": d.invt_no, "updatedAt": iso(d.updated_at),
        "verdicts": {
            r: {"status": v.status, "info": v.info, "receiptType": v.receipt_type, "at": iso(v.updated_at),
                **({"detail": v.detail} if v.detail else {})}
            for r, v in sorted(read.verdicts.get(d.id, {}).items())
        },
    }


def declaration(ebp_code: str, order_no: str, read: Declared) -> dict:
    if any(d.kind in EXPORT_KINDS for d in read.documents):
        return export_declaration(ebp_code, order_no, read)
    out_docs: dict[str, Any] = {}
    amounts = _order_amounts(read.xml)
    for d in read.documents:
        item = _document(d, read)
        if d.id in amounts:
            item["amounts"] = amounts[d.id]
        if d.kind == "waybill_status":
            out_docs.setdefault("waybillStatus", []).append(item)
        else:
            out_docs[d.kind] = item  # one each; the latest wins for repeated kinds
    state, reasons = overall(out_docs)
    return {"ebpCode": ebp_code, "orderNo": order_no, "state": state, "reasons": reasons, "documents": out_docs}


def _order_amounts(xml: dict[int, str]) -> dict[int, dict[str, str]]:
    """The amounts of each order, from the XML of its version in force."""
    out = {}
    for doc_id, text in xml.items():
        head = etree.fromstring(text.encode("utf-8")).find(f"{{{CEB_NS}}}OrderHead")  # stored by the window itself
        if head is not None:
            out[doc_id] = {f: v for f in ORDER_AMOUNTS if (v := head.findtext(f"{{{CEB_NS}}}{f}")) is not None}
    return out


def overall(docs: dict[str, Any]) -> tuple[DeclarationState, list[str]]:
    def verdicts(kind: str) -> dict[str, dict]:
        d = docs.get(kind)
        return d["verdicts"] if isinstance(d, dict) else {}

    refused = [
        f"{regulator} refused the {kind}: {v['info']}"
        for kind in (*CORE, "cancel", "refund") for regulator, v in verdicts(kind).items()
        if _refused(v["status"]) and not (kind in ("cancel", "refund") and regulator == "customs")
    ]
    if refused:
        return DeclarationState.REJECTED, refused
    cancel = verdicts("cancel").get("customs")
    if cancel and cancel["status"] in ("399", "800"):
        return DeclarationState.CANCELLED, [f"customs: {cancel['info']}"]
    listing = verdicts("inventory")
    for regulator in ("customs", "inspection"):
        v = listing.get(regulator)
        if v and v["status"] in HOLDS:
            return HOLDS[v["status"]], [f"{regulator}: {v['info']}"]
    customs = listing.get("customs")
    if customs and customs["status"] == "800":
        return DeclarationState.RELEASED, []
    missing = [k for k in CORE if k not in docs]
    if missing:
        return DeclarationState.WAITING, [f"waiting for the {', '.join(missing)}"]
    return DeclarationState.WAITING, ["waiting for customs" if not customs else f"customs: {customs['info']}"]


# ---- export (CEB.md §8.4) ---------------------------------------------------------------------------------

# One of each per declaration; the others may be several (a master bill per leg, a return per parcel …).
EXPORT_SINGLE = ("export_order", "collection", "export_waybill")
EXPORT_CORE = ("export_order", "export_waybill", "export_inventory")  # 收款单 only for orderType E: see below
RETURNED_IN = ("800",)  # customs took a return back in: its quantities come off the list


def _lines(xml: str | None, node: str) -> dict[str, Decimal]:
    """gnum -> qty of the lines ``node`` of a stored export list or return."""
    if not xml:
        return {}
    root = etree.fromstring(xml.encode("utf-8"))  # stored by the window itself
    out: dict[str, Decimal] = {}
    for li in root.iter(f"{{{CEB_NS}}}{node}"):
        gnum = (li.findtext(f"{{{CEB_NS}}}gnum") or "").strip()
        try:
            out[gnum] = out.get(gnum, Decimal(0)) + Decimal(li.findtext(f"{{{CEB_NS}}}qty") or "0")
        except InvalidOperation:
            continue
    return out


def _order_type(xml: str | None) -> str | None:
    if not xml:
        return None
    head = etree.fromstring(xml.encode("utf-8")).find(f"{{{CEB_NS}}}OrderHead")
    return head.findtext(f"{{{CEB_NS}}}orderType") if head is not None else None


def export_declaration(ebp_code: str, order_no: str, read: Declared) -> dict:
    """The export view: each document once (or a list of them), the overall state, what was returned
    and the summary the list is in."""
    docs: dict[str, Any] = {}
    by_kind: dict[str, list] = {}
    for d in read.documents:
        by_kind.setdefault(d.kind, []).append(d)
        item = _document(d, read)
        if d.kind in EXPORT_SINGLE or d.kind == "export_inventory":
            docs[d.kind] = item  # the latest wins: a list filed again after a refusal replaces it
        else:
            docs.setdefault(d.kind, []).append(item)
    lists = by_kind.get("export_inventory", [])
    listing = lists[-1] if lists else None
    order = (by_kind.get("export_order") or [None])[-1]
    order_type = _order_type(read.xml.get(order.id)) if order is not None else None
    returned = None
    if listing is not None:
        declared = _lines(read.xml.get(listing.id), "InventoryList")
        back: dict[str, Decimal] = {}
        for r in by_kind.get("export_refund", []):
            if read.verdicts.get(r.id, {}).get("customs") and read.verdicts[r.id]["customs"].status in RETURNED_IN:
                for gnum, qty in _lines(read.xml.get(r.id), "InvtRefundList").items():
                    back[gnum] = back.get(gnum, Decimal(0)) + qty
        if back:
            full = all(back.get(g, Decimal(0)) >= q for g, q in declared.items())
            returned = {"extent": "fully" if full else "partly",
                        "lines": {g: {"declared": str(q), "returned": str(back.get(g, Decimal(0)))} for g, q in declared.items()}}
    state, reasons = export_overall(docs, order_type, returned)
    summary = None
    for s in by_kind.get("summary", []):
        v = read.verdicts.get(s.id, {}).get("customs")
        summary = {"key": s.business_key, "sumNo": s.invt_no, "status": v.status if v else s.status,
                   "info": v.info if v else None}
    out = {"ebpCode": ebp_code, "orderNo": order_no, "direction": "export", "orderType": order_type,
           "state": state, "reasons": reasons, "documents": docs}
    if returned:
        out["returned"] = returned
    if summary:
        out["summary"] = summary
    return out


def export_overall(docs: dict[str, Any], order_type: str | None, returned: dict | None) -> tuple[DeclarationState, list[str]]:
    def verdicts(kind: str) -> list[tuple[str, dict]]:
        d = docs.get(kind)
        items = d if isinstance(d, list) else [d] if d else []
        return [(r, v) for item in items for r, v in item["verdicts"].items()]

    refused = [
        f"{regulator} refused the {kind.replace('_', ' ')}: {v['info']}"
        for kind in (*EXPORT_CORE, "collection") for regulator, v in verdicts(kind) if _refused(v["status"])
    ]
    if refused:
        return DeclarationState.REJECTED, refused
    cancel = next((v for r, v in verdicts("export_cancel") if r == "customs" and v["status"] == "399"), None)
    if cancel:
        return DeclarationState.CANCELLED, [f"customs: {cancel['info']}"]
    listing = dict(verdicts("export_inventory"))
    customs = listing.get("customs")
    if returned:
        return DeclarationState.RETURNED, [f"goods returned {returned['extent']}"]
    if customs and customs["status"] == "899":
        return DeclarationState.DEPARTED, []
    for regulator in ("customs", "inspection"):
        v = listing.get(regulator)
        if v and v["status"] in HOLDS:
            return HOLDS[v["status"]], [f"{regulator}: {v['info']}"]
    if customs and customs["status"] == "800":
        return DeclarationState.RELEASED, []
    needed = (*EXPORT_CORE, *(("collection",) if order_type == "E" else ()))
    missing = [k.replace("_", " ") for k in needed if k not in docs]
    if missing:
        return DeclarationState.WAITING, [f"waiting for the {', '.join(missing)}"]
    return DeclarationState.WAITING, ["waiting for customs" if not customs else f"customs: {customs['info']}"]


# ---- export summaries (汇总申报) --------------------------------------------------------------------------


async def readable_summary(session: AsyncSession, caller: Principal, agent_code: str, cop_no: str) -> dict:
    """The summary view, for the operator, the regulators and the firms named in the request."""
    everyone = caller.is_operator or caller.is_regulator
    read = await repository.summary(session, agent_code, cop_no, None if everyone else (caller.codes or (caller.code or "",)))
    if not read.parts.documents or not (everyone or read.parts.named):
        raise SummaryNotFound(f"no summary {cop_no} of agent {agent_code} that you may read")
    parts = [_document(d, read.parts) for d in read.parts.documents]
    first = read.parts.documents[0]
    customs = read.parts.verdicts.get(first.id, {}).get("customs")
    sum_no = next((d.invt_no for d in read.parts.documents if d.invt_no), None)
    declarations = [{
        "declSeqNo": r.decl_seq_no, "decTmpNo": r.dec_tmp_no, "decPreNo": r.dec_pre_no, "entryId": r.entry_id,
        "decState": r.dec_state, "grossWeight": r.gross_weight, "netWeight": r.net_weight, "lines": r.lines,
        "updatedAt": iso(r.updated_at),
    } for r in read.results]
    if any(_refused(v.status) for d in read.parts.documents for v in read.parts.verdicts.get(d.id, {}).values()):
        state = "rejected"
    elif declarations and all(d["entryId"] for d in declarations):
        state = "declared"  # every declaration it became exists at customs (ours: a 792 with entryId)
    elif declarations:
        state = "summarised"
    elif sum_no:
        state = "accepted"
    else:
        state = "waiting"
    return {
        "agentCode": agent_code, "copNo": cop_no, "sumNo": sum_no, "state": state,
        "info": customs.info if customs else None, "parts": parts,
        "lists": [{"key": d.business_key, "invtNo": d.invt_no, "status": d.status,
                   "verdicts": {r: {"status": v.status, "info": v.info} for r, v in sorted(read.list_verdicts.get(d.id, {}).items())}}
                  for d in read.lists],
        "declarations": declarations,
    }
