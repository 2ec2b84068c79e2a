"""What the window writes to the ledger: one builder per kind of event, and the topics it is filed under.

An entry names *that* something happened to a business object, never its personal data: ``subject``
holds business keys and ``digest`` the SHA-256 of the content (the message as filed, the registration
record, the view a regulator received), so the content can be proven later, or erased, without the
log changing. ``ledger.Entry`` refuses personal-data field names; the builders here only ever put in
keys, codes, states and numbers.

Topics are the ledger's index (not hashed, not part of the entry):

* ``party:{code}``  every enterprise the event concerns -- a firm reads the entries filed under its own;
* ``order:{ebpCode}|{orderNo}``  every document of one declaration that carries both (the trace);
* ``doc:{kind}:{key}``  the document itself, and documents that point at it (a list at its waybill);
* ``reg:{code}``  the versions of one registration (the registrations a trace used).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ledger import Entry, canonical_json
from schemas.catalog import ENTERPRISE_FIELDS, PLACEHOLDERS
from schemas.documents import FiledDocument, ceb

# Every kind of entry the window writes (routing and delivery kinds are written by the dispatcher).
FILING_ACCEPTED = "filing.accepted"
FILING_REJECTED = "filing.rejected"
DOCUMENT_STATE = "document.state"
REGISTRATION_CREATED = "registration.version.created"
REGISTRATION_APPROVED = "registration.version.approved"
REGISTRATION_REJECTED = "registration.version.rejected"
REGISTRATION_SHARED = "registration.shared"
REGISTRATION_READ = "registration.read"
MESSAGE_ROUTED = "message.routed"
DELIVERY_ATTEMPTED = "delivery.attempted"
DELIVERY_DELIVERED = "delivery.delivered"
DELIVERY_DEAD = "delivery.dead"
DELIVERY_RETRIED = "delivery.retried"
RECEIPT_RECEIVED = "receipt.received"
RECEIPT_FORWARDED = "receipt.forwarded"
KINDS = (
    FILING_ACCEPTED, FILING_REJECTED, DOCUMENT_STATE, REGISTRATION_CREATED, REGISTRATION_APPROVED,
    REGISTRATION_REJECTED, REGISTRATION_SHARED, REGISTRATION_READ, MESSAGE_ROUTED, DELIVERY_ATTEMPTED,
    DELIVERY_DELIVERED, DELIVERY_DEAD, DELIVERY_RETRIED, RECEIPT_RECEIVED, RECEIPT_FORWARDED,
)  # fmt: skip
MAX_CODES = 20  # rejection codes kept in one entry


@dataclass(frozen=True, slots=True)
class Event:
    entry: Entry
    topics: tuple[str, ...]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_of(obj: Any) -> str:
    """The SHA-256 of a JSON-able object's canonical form (a record, a view)."""
    return sha256_hex(canonical_json(obj))


def order_topic(ebp_code: str, order_no: str) -> str:
    return f"order:{ebp_code}|{order_no}"


def doc_topic(kind: str, key: Iterable[str]) -> str:
    return f"doc:{kind}:{'|'.join(key)}"


def party_topic(code: str) -> str:
    return f"party:{code}"


def reg_topic(code: str) -> str:
    return f"reg:{code}"


def _actor(code: str | None) -> str:
    return code or "operator"


# ---- filings --------------------------------------------------------------------------------------------


def document_subject(doc: FiledDocument) -> dict[str, str]:
    """The document's business keys, and the declaration it belongs to where its head names one."""
    head = doc.head
    subject = {"doc": doc.mtype.kind, **dict(zip(doc.key_names, doc.key))}
    for name in ("ebpCode", "orderNo", "logisticsCode", "logisticsNo", "invtNo"):
        value = head.text(name)
        if value and name not in subject:
            subject[name] = value
    return subject


def parties_of(doc: FiledDocument) -> list[str]:
    return sorted({v for f in ENTERPRISE_FIELDS if (v := doc.head.text(f))})


def bill_topic(bill_no: str) -> str:
    """An export master bill: what a 607 puts waybills under, and an arrival or departure without lines covers."""
    return doc_topic("bill", (bill_no,))


def list_topic(invt_no: str) -> str:
    """An export list by customs' number: what cancellations, returns and summaries name it by."""
    return doc_topic("list", (invt_no,))


def declaration_ref(head) -> tuple[str, str] | None:
    """(platform, orderNo) of the declaration a head belongs to: the seller stands for the platform
    when an export document names the placeholder 无 (CEB.md §8.2)."""
    ebp, order_no = head.text("ebpCode"), head.text("orderNo")
    if not (ebp and order_no):
        return None
    if ebp == PLACEHOLDERS["ebpCode"]:
        ebp = head.text("ebcCode") or ebp
    return ebp, order_no


def document_topics(doc: FiledDocument, sender: str | None) -> tuple[str, ...]:
    head = doc.head
    topics = [doc_topic(doc.mtype.kind, doc.key)]
    if (ref := declaration_ref(head)) is not None:
        topics.append(order_topic(*ref))
    logistics = head.text("logisticsCode")
    waybill = "export_waybill" if doc.mtype.direction == "export" else "waybill"
    if logistics and doc.mtype.kind != waybill:
        # a waybill status, list, cancellation, return, arrival, master bill or departure points at its waybill(s)
        numbers = {el.text for el in doc.node.iter(ceb("logisticsNo")) if el.text}
        topics += [doc_topic(waybill, (logistics, n)) for n in sorted(numbers)]
    if doc.mtype.direction == "export":  # an export cancellation, return, master bill or summary names lists
        topics += [list_topic(n) for n in sorted({el.text for el in doc.node.iter(ceb("invtNo")) if el.text})]
        bill = head.text("billNo")
        # a list's or master bill's bill, and an arrival or departure naming only a bill, meet on it
        if bill and (doc.mtype.kind in ("export_inventory", "consolidation") or not doc.lines) \
                and doc.mtype.kind not in ("export_refund", "refund_tally"):
            topics.append(bill_topic(bill))
    topics += [party_topic(c) for c in sorted({*parties_of(doc), *([sender] if sender else [])})]
    return tuple(topics)


def filing_accepted(doc: FiledDocument, *, sender: str | None, guid: str | None, digest: str, version: int,
                    status: str, topics: tuple[str, ...] | None = None) -> Event:
    extra = {
        "messageType": doc.mtype.code, "guid": guid, "document": doc.index, "appType": doc.app_type,
        "version": version, "status": status, "parties": parties_of(doc),
    }
    entry = Entry(kind=FILING_ACCEPTED, actor=_actor(sender), subject=document_subject(doc), digest=digest, extra=extra)
    return Event(entry, topics if topics is not None else document_topics(doc, sender))


def filing_rejected(*, sender: str | None, guid: str | None, message_type: str | None, digest: str,
                    http_status: int, codes: Iterable[str], docs: Iterable[FiledDocument] = ()) -> list[Event]:
    """One entry per document when the documents could be read (schema-valid), else one for the message."""
    kept = sorted(set(codes))[:MAX_CODES]
    extra: dict[str, Any] = {"messageType": message_type, "guid": guid, "httpStatus": http_status, "codes": kept}
    docs = list(docs)
    if not docs:
        subject = {"doc": "message", "messageType": message_type, "guid": guid}
        topics = (party_topic(sender),) if sender else ()
        return [Event(Entry(kind=FILING_REJECTED, actor=_actor(sender), subject=subject, digest=digest, extra=extra), topics)]
    return [
        Event(
            Entry(kind=FILING_REJECTED, actor=_actor(sender), subject=document_subject(d), digest=digest,
                  extra={**extra, "document": d.index}),
            document_topics(d, sender),
        )
        for d in docs
    ]


def document_state(doc: FiledDocument, *, sender: str | None, digest: str, before: str, after: str, version: int) -> Event:
    """A filing changed a stored document's state (saved → declared, deleted)."""
    return state_change(document_subject(doc), actor=_actor(sender), digest=digest, before=before, after=after,
                        version=version, topics=document_topics(doc, sender))


def state_change(subject: Mapping[str, Any], *, actor: str, digest: str, before: str, after: str, version: int,
                 topics: Iterable[str]) -> Event:
    """A document's state changed; ``digest`` is of what changed it (a filing, a regulator's receipt)."""
    entry = Entry(kind=DOCUMENT_STATE, actor=actor, subject=dict(subject), digest=digest,
                  extra={"from": before, "to": after, "version": version})
    return Event(entry, tuple(topics))


# ---- the registry ---------------------------------------------------------------------------------------


def _reg_topics(code: str) -> tuple[str, ...]:
    return (reg_topic(code), party_topic(code))


def registration_created(code: str, version: int, *, record: Mapping[str, Any], kind: str, state: str, status: str,
                         changed: Iterable[str], by: str) -> Event:
    entry = Entry(
        kind=REGISTRATION_CREATED, actor=by, subject={"enterprise": code, "version": version}, digest=digest_of(dict(record)),
        extra={"kind": kind, "state": state, "status": status, "changedFields": sorted(changed)},
    )
    return Event(entry, _reg_topics(code))


def registration_decided(code: str, version: int, *, record: Mapping[str, Any], approved: bool) -> Event:
    entry = Entry(
        kind=REGISTRATION_APPROVED if approved else REGISTRATION_REJECTED, actor="operator",
        subject={"enterprise": code, "version": version}, digest=digest_of(dict(record)),
    )
    return Event(entry, _reg_topics(code))


def registration_shared(code: str, version: int, *, record: Mapping[str, Any], kind: str, regulators: Iterable[str]) -> Event:
    entry = Entry(
        kind=REGISTRATION_SHARED, actor="swx", subject={"enterprise": code, "version": version},
        digest=digest_of(dict(record)), extra={"kind": kind, "regulators": sorted(regulators)},
    )
    return Event(entry, _reg_topics(code))


def registration_read(code: str, version: int, *, regulator: str, view: Mapping[str, Any], via: str) -> Event:
    """A regulator received a registration: the digest is of exactly the view it was given."""
    entry = Entry(
        kind=REGISTRATION_READ, actor=regulator, subject={"enterprise": code, "version": version},
        digest=digest_of(dict(view)), extra={"via": via, "fields": sorted(view)},
    )
    return Event(entry, (party_topic(code),))


# ---- routing, delivery and verdicts ---------------------------------------------------------------------


def split_topics(text: str | None) -> tuple[str, ...]:
    return tuple(text.split("\n")) if text else ()


def message_routed(*, guid: str, message_type: str, digest: str, regulators: Iterable[str], topics: Iterable[str]) -> Event:
    """A filing was put in the outbox for these regulators, in the filing's own transaction."""
    entry = Entry(
        kind=MESSAGE_ROUTED, actor="swx", subject={"doc": "message", "messageType": message_type, "guid": guid},
        digest=digest, extra={"regulators": sorted(regulators)},
    )
    return Event(entry, tuple(dict.fromkeys(topics)))


def delivery_event(kind: str, *, delivery_id: int, regulator: str, subject: Mapping[str, Any], digest: str,
                   attempt: int, topics: Iterable[str], status: int | None = None, error: str | None = None) -> Event:
    """One delivery attempt that failed (``delivery.attempted``), succeeded or was given up."""
    extra: dict[str, Any] = {"delivery": delivery_id, "regulator": regulator, "attempt": attempt}
    if status is not None:
        extra["httpStatus"] = status
    if error:
        extra["error"] = error[:300]
    entry = Entry(kind=kind, actor="swx", subject=dict(subject), digest=digest, extra=extra)
    return Event(entry, tuple(topics))


def receipt_received(*, regulator: str, subject: Mapping[str, Any], digest: str, receipt_type: str, status: str,
                     topics: Iterable[str], detail: Mapping[str, Any] | None = None) -> Event:
    """A regulator's verdict on one document; the digest is of the receipt message as it was sent."""
    extra: dict[str, Any] = {"receiptType": receipt_type, "status": status}
    if detail:
        extra.update(detail)
    entry = Entry(kind=RECEIPT_RECEIVED, actor=regulator, subject=dict(subject), digest=digest, extra=extra)
    return Event(entry, tuple(topics))


def receipt_forwarded(*, regulator: str, subject: Mapping[str, Any], digest: str, receipt_type: str,
                      addressees: Iterable[str], topics: Iterable[str]) -> Event:
    to = sorted(set(addressees))
    entry = Entry(
        kind=RECEIPT_FORWARDED, actor="swx", subject=dict(subject), digest=digest,
        extra={"regulator": regulator, "receiptType": receipt_type, "to": to},
    )
    return Event(entry, (*topics, *(party_topic(c) for c in to)))
