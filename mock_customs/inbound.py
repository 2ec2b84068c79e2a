"""Reading what the window delivers: a ``DxpMsg`` envelope (or a bare CEB message) into documents.

The body comes from the network, so it is parsed as hostile: no DTD, no entity expansion, no
network, bounded size and depth (the same approach as the gateway's ``xmlsafe``, repeated here
because the stand-ins share nothing with the gateway but HTTP).
"""

from __future__ import annotations

import base64
import binascii
import threading
from dataclasses import dataclass

from lxml import etree

from mock_customs.base import ReceivedDoc
from schemas.catalog import BY_ROOT, CEB_NS, DXP_NS, MessageType

MAX_DEPTH = 16  # CEB and DxpMsg nest 4 deep, a signature 7; anything deeper is not ours


class Unreadable(Exception):
    """The body is not a message a regulator can read; the text says why (answered as 400)."""


@dataclass(slots=True)
class Inbound:
    guid: str
    mtype: MessageType
    raw: bytes  # the CEB message itself, unwrapped
    docs: list[ReceivedDoc]


_local = threading.local()


def _parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)  # lxml parsers are not thread-safe: one per thread
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                                 huge_tree=False, collect_ids=False)
        _local.parser = parser
    return parser


def parse_safely(data: bytes, max_bytes: int) -> etree._Element:
    if not data.strip():
        raise Unreadable("the body is empty; send a DxpMsg envelope or a CEB message")
    if len(data) > max_bytes:
        raise Unreadable(f"the body is larger than {max_bytes} bytes")
    if b"<!DOCTYPE" in data[:8192]:
        raise Unreadable("document type declarations are not allowed")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise Unreadable(f"not well-formed XML: {exc.msg or exc}") from None
    except ValueError as exc:  # an encoding libxml2 cannot honour, for one
        raise Unreadable(f"cannot read the XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise Unreadable("document type declarations are not allowed")
    if root.xpath("boolean(/*" + "/*" * MAX_DEPTH + ")"):
        raise Unreadable(f"elements are nested deeper than {MAX_DEPTH} levels")
    return root


def _fields(element: etree._Element) -> dict[str, str]:
    return {etree.QName(child).localname: (child.text or "").strip()
            for child in element if isinstance(child.tag, str)}


def _unwrap(root: etree._Element, max_bytes: int) -> tuple[etree._Element, bytes | None]:
    """The CEB root inside a DxpMsg (and its bytes), or the root itself when it is bare."""
    if root.tag != f"{{{DXP_NS}}}DxpMsg":
        return root, None
    data = root.findtext(f"{{{DXP_NS}}}Data")
    if not data or not data.strip():
        raise Unreadable("the DxpMsg has no Data")
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Unreadable("DxpMsg Data is not valid Base64") from None
    return parse_safely(raw, max_bytes), raw


def read_message(body: bytes, max_bytes: int) -> Inbound:
    """The filed CEB message in ``body``: its guid, type, bytes and documents (head + lines each)."""
    outer = parse_safely(body, max_bytes)
    root, raw = _unwrap(outer, max_bytes)
    qname = etree.QName(root)
    if qname.namespace != CEB_NS or qname.localname not in BY_ROOT:
        raise Unreadable(f"{qname.localname} is not a filed CEB message (expected one of {', '.join(sorted(BY_ROOT))})")
    mtype = BY_ROOT[qname.localname]
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
