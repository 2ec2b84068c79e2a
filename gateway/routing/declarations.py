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

from typing import Any

from lxml import etree
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.times import iso
from schemas.catalog import CEB_NS

from ..models import Document, DocumentParty, DocumentVersion
from .models import Verdict

# The order's amounts, shown so that regulators can check limits and tax (amounts, not personal data).
ORDER_AMOUNTS = ("goodsValue", "freight", "discount", "taxTotal", "acturalPaid", "currency")

CORE = ("order", "payment", "waybill", "inventory")
HOLDS = {"300": "review", "500": "inspection"}



def _refused(status: str) -> bool:
    return status == "100" or status.startswith("-")


async def documents_of(session: AsyncSession, ebp_code: str, order_no: str) -> list[Document]:
    """Each lookup is an index range (no OR, no LIKE): the view is read often, by firms and by regulators."""
    ref = f"{ebp_code}|{order_no}"
    docs = list((await session.execute(select(Document).where(Document.order_ref == ref))).scalars())
    if not any(d.kind == "order" for d in docs):
        docs += (await session.execute(
            select(Document).where(Document.kind == "order", Document.business_key == ref)
        )).scalars()
    waybills = sorted({(d.links or {}).get("waybill") for d in docs if d.kind == "inventory"} - {None})
    for w in waybills:
        docs += (await session.execute(select(Document).where(Document.kind == "waybill", Document.business_key == w))).scalars()
        # its status updates: keys "logisticsCode|logisticsNo|status", i.e. the range just above "w|"
        docs += (await session.execute(select(Document).where(
            Document.kind == "waybill_status", Document.business_key > w + "|", Document.business_key < w + "}",
        ))).scalars()
    return sorted({d.id: d for d in docs}.values(), key=lambda d: d.id)


async def may_read(session: AsyncSession, docs: list[Document], codes: tuple[str, ...]) -> bool:
    """A firm reads a declaration when it filed, or is named in, one of its documents."""
    if not docs or not codes:
        return False
    hit = await session.execute(
        select(DocumentParty.document_id).where(
            DocumentParty.document_id.in_([d.id for d in docs]), DocumentParty.party_code.in_(codes)
        ).limit(1)
    )
    return hit.first() is not None


async def declaration(session: AsyncSession, ebp_code: str, order_no: str, docs: list[Document]) -> dict:
    verdicts: dict[int, dict[str, Verdict]] = {}
    if docs:
        for v in (await session.execute(select(Verdict).where(Verdict.document_id.in_([d.id for d in docs])))).scalars():
            verdicts.setdefault(v.document_id, {})[v.regulator] = v
    out_docs: dict[str, Any] = {}
    amounts = await _order_amounts(session, [d for d in docs if d.kind == "order"])
    for d in docs:
        item = {
            "kind": d.kind, "key": d.business_key, "status": d.status, "version": d.version, "filedBy": d.owner_code,
            "preNo": d.pre_no, "invtNo": d.invt_no, "updatedAt": iso(d.updated_at),
            "verdicts": {
                r: {"status": v.status, "info": v.info, "receiptType": v.receipt_type, "at": iso(v.updated_at),
                    **({"detail": v.detail} if v.detail else {})}
                for r, v in sorted(verdicts.get(d.id, {}).items())
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


async def _order_amounts(session: AsyncSession, orders: list[Document]) -> dict[int, dict[str, str]]:
    if not orders:
        return {}
    rows = await session.execute(
        select(DocumentVersion.document_id, DocumentVersion.xml).where(
            or_(*[and_(DocumentVersion.document_id == d.id, DocumentVersion.version == d.version) for d in orders])
        )
    )
    out = {}
    for doc_id, xml in rows:
        head = etree.fromstring(xml.encode("utf-8")).find(f"{{{CEB_NS}}}OrderHead")  # stored by the window itself
        if head is not None:
            out[doc_id] = {f: v for f in ORDER_AMOUNTS if (v := head.findtext(f"{{{CEB_NS}}}{f}")) is not None}
    return out


def overall(docs: dict[str, Any]) -> tuple[str, list[str]]:
    def verdicts(kind: str) -> dict[str, dict]:
        d = docs.get(kind)
        return d["verdicts"] if isinstance(d, dict) else {}

    refused = [
        f"{regulator} refused the {kind}: {v['info']}"
        for kind in (*CORE, "cancel", "refund") for regulator, v in verdicts(kind).items()
        if _refused(v["status"]) and not (kind in ("cancel", "refund") and regulator == "customs")
    ]
    if refused:
        return "rejected", refused
    cancel = verdicts("cancel").get("customs")
    if cancel and cancel["status"] in ("399", "800"):
        return "cancelled", [f"customs: {cancel['info']}"]
    listing = verdicts("inventory")
    for regulator in ("customs", "inspection"):
        v = listing.get(regulator)
        if v and v["status"] in HOLDS:
            return HOLDS[v["status"]], [f"{regulator}: {v['info']}"]
    customs = listing.get("customs")
    if customs and customs["status"] == "800":
        return "released", []
    missing = [k for k in CORE if k not in docs]
    if missing:
        return "waiting", [f"waiting for the {', '.join(missing)}"]
    return "waiting", ["waiting for customs" if not customs else f"customs: {customs['info']}"]
