"""One declaration across all regulators: its documents, each regulator's latest verdict, one state.

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

from enum import StrEnum
from typing import Any

from lxml import etree
from sqlalchemy.ext.asyncio import AsyncSession

from kit.times import iso
from schemas.catalog import CEB_NS

from ..auth import Principal
from . import repository
from .errors import DeclarationNotFound
from .repository import Declared

# The order's amounts, shown so that regulators can check limits and tax (amounts, not personal data).
ORDER_AMOUNTS = ("goodsValue", "freight", "discount", "taxTotal", "acturalPaid", "currency")



class DeclarationState(StrEnum):
    WAITING = "waiting"
    REVIEW = "review"
    INSPECTION = "inspection"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    RELEASED = "released"


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


def declaration(ebp_code: str, order_no: str, read: Declared) -> dict:
    out_docs: dict[str, Any] = {}
    amounts = _order_amounts(read.xml)
    for d in read.documents:
        item = {
            "kind": d.kind, "key": d.business_key, "status": d.status, "version": d.version, "filedBy": d.owner_code,
            "preNo": d.pre_no, "invtNo": d.invt_no, "updatedAt": iso(d.updated_at),
            "verdicts": {
                r: {"status": v.status, "info": v.info, "receiptType": v.receipt_type, "at": iso(v.updated_at),
                    **({"detail": v.detail} if v.detail else {})}
                for r, v in sorted(read.verdicts.get(d.id, {}).items())
            },
        }
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
