"""Steps 1–3 of intake, with no database: parse safely, unwrap, validate against the schema, check rules.

Everything here is synchronous and CPU-bound; the service runs it in a worker thread so that libxml2
(which releases the GIL) does not block the event loop. Each thread compiles its own copy of the
schemas once, because an lxml schema object keeps its error log on itself and is not safe to share.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass, field

from lxml import etree, objectify

from kit.envelope import EnvelopeError, dxp_payload
from kit.xmlsafe import UnsafeXml, check_depth, parse_untrusted
from schemas.catalog import BY_ROOT, CEB_NS, CUSTOMS_RECEIVERS, DS_NS, DXP_NS, MessageType
from schemas.documents import (
    FiledDocument,
    documents_of,
    transfer_fields,
    within_schema_depth,
    xpath_of,
)
from schemas.loader import thread_schema, thread_schemas

from .findings import (
    ADDRESS_MISMATCH,
    OTHER_BUSINESS,
    RECEIVER_UNKNOWN,
    SCHEMA_INVALID,
    Finding,
)
from .rules import UUID_UPPER, duplicate_keys
from .ruleset import check_document

# A signature that does not verify, by message; export's family-less ones are -(code × 1000 + 5) (CEB.md §8.5).
SIGNATURE_CODES = {"621": "-621029", "623": "-623029", "625": "-625208", "603": "-621029", "605": "-623029",
                   "213": "-625208", **{c: f"-{c}005" for c in ("507", "509", "607", "215", "701")}}
_NS_NAMES = {"{%s}" % CEB_NS: "ceb:", "{%s}" % DXP_NS: "dxp:", "{%s}" % DS_NS: "ds:"}

_XSI_TYPED = etree.XPath("//*[@xsi:type]", namespaces={"xsi": "http://www.w3.org/2001/XMLSchema-instance"}, regexp=False)
# Encodings that write every ASCII character as its own single byte: ASCII text is in the raw bytes as is.
_ASCII_COMPATIBLE = frozenset({"UTF-8", "US-ASCII", "ASCII", "GBK", "GB18030", "GB2312", "ISO-8859-1"})
_UTF8_DECLARATIONS = tuple(
    f"<?xml version={q}1.0{q} encoding={q}{name}{q}?>".encode() for q in "\"'" for name in ("UTF-8", "utf-8")
)
_C = f"{{{CEB_NS}}}"
_DXP_ROOT = f"{{{DXP_NS}}}DxpMsg"
_SIGNATURE = objectify.ObjectPath(["", f"{{{DS_NS}}}Signature"])  # first ds:Signature child, found in C
_COP_CODE = objectify.ObjectPath(["", f"{_C}BaseTransfer", f"{_C}copCode"])
@dataclass(slots=True)
class Checked:
    """What steps 1–3 learned about one filing."""

    raw: bytes  # the CEB message itself (unwrapped from its envelope)
    digest: str
    enveloped: bool = False
    root: etree._Element | None = None
    mtype: MessageType | None = None
    guid: str | None = None
    cop_code: str | None = None
    docs: list[FiledDocument] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def message_type(self) -> str | None:
        return self.mtype.root if self.mtype else None


def _tidy(message: str) -> str:
    for ns, prefix in _NS_NAMES.items():
        message = message.replace(ns, prefix)
    return message.strip()


def _schema_findings(schema: etree.XMLSchema, docs: list[FiledDocument] | None = None) -> list[Finding]:
    starts = [d.node.sourceline or 0 for d in docs] if docs else []
    out = []
    for err in schema.error_log:
        label = None
        if starts and err.line:
            i = bisect_right(starts, err.line) - 1
            if i >= 0:
                label = docs[i].label
        out.append(Finding("schema", SCHEMA_INVALID, _tidy(err.message), _tidy(err.path or "") or None, err.line or None, label))
    return out


def _receiver_findings(info: etree._Element, mtype: MessageType | None) -> list[Finding]:
    """The envelope must reach customs' receiver for the message's direction (CEB.md §6)."""
    receivers = [r.text for r in info.iter(f"{{{DXP_NS}}}ReceiverId")]
    direction = mtype.direction if mtype is not None else "import"
    wanted = CUSTOMS_RECEIVERS[direction]
    if wanted in receivers or (mtype is None and set(receivers) & set(CUSTOMS_RECEIVERS.values())):
        return []
    el = info.find(f"{{{DXP_NS}}}ReceiverIds")
    return [Finding(
        "rule", RECEIVER_UNKNOWN,
        f"ReceiverIds must include the customs {direction} receiver {wanted}; got {', '.join(receivers)}",
        xpath_of(el), el.sourceline,
    )]


def _unwrap(tree: etree._ElementTree, dxp_id: str | None) -> tuple[bytes | None, etree._Element | None, list[Finding]]:
    """The CEB message inside a DxpMsg and the envelope's TransInfo, with findings about the envelope."""
    _, dxp_schema = thread_schemas()
    if not dxp_schema.validate(tree):
        return None, None, _schema_findings(dxp_schema)
    root = tree.getroot()
    info = root.find(f"{{{DXP_NS}}}TransInfo")
    findings = []
    sender = info.find(f"{{{DXP_NS}}}SenderId")
    if dxp_id and sender.text != dxp_id:
        findings.append(Finding(
            "rule", ADDRESS_MISMATCH,
            f"SenderId '{sender.text}' is not your registered exchange id '{dxp_id}'",
            xpath_of(sender), sender.sourceline,
        ))
    try:
        inner = dxp_payload(root)
    except EnvelopeError:
        data = root.find(f"{{{DXP_NS}}}Data")
        bad = Finding("schema", SCHEMA_INVALID, "Data is not valid Base64", xpath_of(data), data.sourceline)
        return None, None, findings + [bad]
    return inner, info, findings


def check(body: bytes, *, max_depth: int, cop_code: str | None = None, dxp_id: str | None = None) -> Checked:
    """Run steps 1–3 on ``body``. Raises :class:`UnsafeXml` for anything that is not readable XML.

    ``cop_code`` and ``dxp_id`` are the caller's: a message transmitted under another code is a finding.
    """
    # The depth of a CEB message is checked below, once the schema may have made walking it needless.
    tree = parse_untrusted(body, max_depth=max_depth, depth_checked_by_caller=True)
    raw, enveloped, info, pre = body, False, None, []
    if tree.getroot().tag == _DXP_ROOT:
        check_depth(tree.getroot(), max_depth)
        enveloped = True
        inner, info, pre = _unwrap(tree, dxp_id)
        if inner is None:
            return Checked(body, hashlib.sha256(body).hexdigest(), True, findings=pre)
        raw = inner
        tree = parse_untrusted(inner, max_depth=max_depth, depth_checked_by_caller=True)
    root = tree.getroot()
    tag = root.tag
    mtype = BY_ROOT.get(tag[len(_C):]) if tag.startswith(_C) else None
    schema_valid = False
    if mtype is not None:
        ceb_schema = thread_schema(mtype.direction)
        schema_valid = ceb_schema.validate(tree)  # first, while the tree just parsed is in the cache
    declared_type, receiver = None, []
    if info is not None:
        # a message for the wrong receiver is first of all that; one that fails its schema, first that
        receiver = _receiver_findings(info, mtype)
        if schema_valid or mtype is None:
            pre, receiver = receiver + pre, []
        declared_type = info.findtext(f"{{{DXP_NS}}}MsgType")
    checked = Checked(raw, hashlib.sha256(raw).hexdigest(), enveloped, root, findings=pre)
    if mtype is None:
        check_depth(root, max_depth)
        checked.findings.append(Finding(
            "schema", SCHEMA_INVALID,
            f"the root element {_tidy(root.tag)} is not a message firms file: send one of "
            + ", ".join(sorted(BY_ROOT)) + f" in namespace {CEB_NS}",
            xpath_of(root), root.sourceline,
        ))
        return checked
    checked.mtype = mtype
    checked.guid = root.get("guid")
    if checked.guid is not None and len(checked.guid) == 36 and not UUID_UPPER.match(checked.guid):
        checked.findings.append(Finding(
            "rule", mtype.check_code, f"the message guid '{checked.guid}' must be an upper-case UUID (8-4-4-4-12 hex digits)",
            xpath_of(root) + "/@guid", root.sourceline,
        ))
    if declared_type is not None and declared_type != mtype.root:
        checked.findings.append(Finding("rule", OTHER_BUSINESS, f"the envelope's MsgType '{declared_type}' does not match the message {mtype.root}"))
    docs = checked.docs = documents_of(root, mtype)
    if not schema_valid:
        checked.findings.extend(_schema_findings(ceb_schema, docs))
        checked.findings.extend(receiver)
    for el in _XSI_TYPED(root) if _may_have_xsi_type(raw, tree) else ():
        # Our named XSD types would let xsi:type name them; the official schema has no such names.
        schema_valid = False
        checked.findings.append(Finding(
            "schema", SCHEMA_INVALID, "xsi:type is not allowed in CEB messages", xpath_of(el), el.sourceline))
    if not (schema_valid and within_schema_depth(mtype, root, max_depth)):
        check_depth(root, max_depth)  # UnsafeXml, as parse_untrusted would have raised it
    cop = _COP_CODE(root, None)  # the first BaseTransfer's first copCode
    checked.cop_code = None if cop is None else (cop.text or "")
    if cop_code is not None and checked.cop_code is not None and checked.cop_code != cop_code:
        transfer = transfer_fields(root)
        checked.findings.append(Finding(
            "rule", ADDRESS_MISMATCH,
            f"BaseTransfer/copCode '{checked.cop_code}' is not your enterprise code '{cop_code}': "
            "a firm files only under its own code",
            transfer.path("copCode"), transfer.line("copCode"),
        ))
    for doc in docs:
        checked.findings.extend(check_document(doc, schema_valid))
    checked.findings.extend(duplicate_keys(docs))
    checked.findings.extend(_signature_findings(root, mtype, docs))
    return checked


def _may_have_xsi_type(raw: bytes, tree: etree._ElementTree) -> bool:
    """False only when ``raw`` (which ``tree`` was parsed from) cannot hold an xsi:type attribute.

    Such an attribute needs the XSI namespace declared, its name spelt out or made with references
    (``&#45;``, ``&amp;``…). In an encoding that writes ASCII as ASCII, that shows in the bytes, and a
    byte search costs a fraction of the XPath walk over every attribute; anything else takes the walk.
    """
    if b"XMLSchema-instance" in raw or b"&" in raw:
        return True
    if raw.startswith(_UTF8_DECLARATIONS):  # what libxml2 then reads it as, without asking it
        return False
    if raw[:1] != b"<" and raw[:4] != b"\xef\xbb\xbf<":  # a UTF-16/32 BOM, leading space, EBCDIC …
        return True
    return (tree.docinfo.encoding or "").upper() not in _ASCII_COMPATIBLE


def _unsigned_findings(root: etree._Element, mtype: MessageType, docs: list[FiledDocument]) -> list[Finding]:
    """Export's schema makes every signature optional; the spec's table requires some (CEB.md §8.1)."""
    if mtype.must_sign == "always":
        why = f"a {mtype.root} must be signed"
    elif mtype.must_sign == "declared" and any(d.app_status == "2" for d in docs):
        why = f"a {mtype.root} with appStatus 2 (declared) must be signed"
    else:
        return []
    return [Finding(
        "rule", SIGNATURE_CODES.get(mtype.code, "1001"),
        f"{why}: add an enveloped ds:Signature (after BaseSubscribe, before ExtendMessage) made with your "
        "registered certificate", xpath_of(root), root.sourceline,
    )]


def _signature_findings(root: etree._Element, mtype: MessageType, docs: list[FiledDocument]) -> list[Finding]:
    sig = _SIGNATURE(root, None)
    if sig is None:
        # where the schema requires one it has said so; where the spec does, this says so
        return _unsigned_findings(root, mtype, docs) if mtype.must_sign else []
    from schemas.signature import verify

    try:
        result = verify(root)
        # SM2-SM3 cannot be checked with the libraries here: its digest is checked, the value is not (README).
        ok, reason = result.ok or result.code == "unverifiable", result.reason
    except Exception as exc:  # noqa: BLE001 - a signature we cannot even read is a failed signature
        ok, reason = False, f"it cannot be read ({exc})"
    if ok:
        return []
    return [Finding(
        "rule", SIGNATURE_CODES.get(mtype.code, "1001"),
        f"the message signature does not verify: {reason}", xpath_of(sig), sig.sourceline,
    )]


__all__ = ["Checked", "UnsafeXml", "check", "thread_schemas"]
