"""Reading what the window delivers: a ``DxpMsg`` envelope (or a bare CEB message) into documents.

The body comes from the network, so it is parsed as hostile: no DTD, no entity expansion, no
network, bounded size and depth — with the kit's safe parser (``kit.xmlsafe``) and envelope reader
(``kit.envelope``), the same the window uses, so the stand-ins still share nothing with the gateway
but HTTP. What they refuse is said as :class:`Unreadable`, answered 400.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from kit.envelope import EnvelopeError, dxp_payload, is_envelope
from kit.xmlsafe import UnsafeXml, parse_untrusted
from mock_customs.documents import SUMMARY_RESULT, ReceivedDoc
from schemas.catalog import BY_ROOT, CEB_NS, MessageType

# What a stand-in can be delivered: every filing, and customs' summary result (792), which the window
# passes on to tax and FX.
READABLE = {**BY_ROOT, SUMMARY_RESULT.root: SUMMARY_RESULT}
MAX_DEPTH = 16  # CEB and DxpMsg nest 4 deep, a signature 7; anything deeper is not ours


class Unreadable(Exception):
    """The body is not a message a regulator can read; the text says why (answered as 400)."""


@dataclass(slots=True)
class Inbound:
    guid: str
    mtype: MessageType
    raw: bytes  # the CEB message itself, unwrapped
    docs: list[ReceivedDoc]


def parse_safely(data: bytes, max_bytes: int) -> etree._Element:
    """The root of ``data``, parsed as hostile (:func:`kit.xmlsafe.parse_untrusted`) and at most ``max_bytes``."""
    if not data.strip():
        raise Unreadable("the body is empty; send a DxpMsg envelope or a CEB message")
    if len(data) > max_bytes:
        raise Unreadable(f"the body is larger than {max_bytes} bytes")
    try:
        return parse_untrusted(data, max_depth=MAX_DEPTH).getroot()
    except UnsafeXml as exc:
        raise Unreadable(exc.message) from None


def _fields(element: etree._Element) -> dict[str, str]:
    return {etree.QName(child).localname: (child.text or "").strip()
            for child in element if isinstance(child.tag, str)}


def _unwrap(root: etree._Element, max_bytes: int) -> tuple[etree._Element, bytes | None]:
    """The CEB root inside a DxpMsg (and its bytes), or the root itself when it is bare."""
    if not is_envelope(root):
        return root, None
    try:
        raw = dxp_payload(root)
    except EnvelopeError as exc:
        raise Unreadable(exc.message) from None
    return parse_safely(raw, max_bytes), raw


def read_message(body: bytes, max_bytes: int) -> Inbound:
    """The filed CEB message in ``body``: its guid, type, bytes and documents (head + lines each)."""
    outer = parse_safely(body, max_bytes)
    root, raw = _unwrap(outer, max_bytes)
    qname = etree.QName(root)
    if qname.namespace != CEB_NS or qname.localname not in READABLE:
        raise Unreadable(f"{qname.localname} is not a filed CEB message (expected one of {', '.join(sorted(READABLE))})")
    mtype = READABLE[qname.localname]
    guid = root.get("guid") or ""
    if not guid:
        raise Unreadable(f"{qname.localname} has no guid attribute")
    ceb = f"{{{CEB_NS}}}"
    docs: list[ReceivedDoc] = []
    if mtype.wrapper:
        for i, wrapper in enumerate(root.findall(ceb + mtype.wrapper), 1):
            head = wrapper.find(ceb + mtype.head)
            if head is None:
                raise Unreadable(f"{mtype.wrapper} {i} has no {mtype.head}")
            lines = [_fields(line) for line in wrapper.findall(ceb + mtype.lines)] if mtype.lines else []
            docs.append(ReceivedDoc(i, _fields(head), lines))
    else:
        docs = [ReceivedDoc(i, _fields(h), []) for i, h in enumerate(root.findall(ceb + mtype.head), 1)]
    if not docs:
        raise Unreadable(f"{qname.localname} holds no {mtype.wrapper or mtype.head}")
    for doc in docs:
        if not doc.head.get("guid"):
            raise Unreadable(f"{mtype.head} {doc.index} has no guid")
    return Inbound(guid, mtype, body if raw is None else raw, docs)
