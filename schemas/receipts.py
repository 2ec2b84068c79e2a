"""Writing CEB receipts: a message's own receipt type (312, 412, …, 622, …; export 304 … 702) and CEB900 for
format failures.

Pure XML, shared by the gateway (its intake answers) and the regulator stand-ins (their verdicts).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from kit.times import BEIJING  # CEB timestamps are China Standard Time
from schemas.catalog import CEB_NS, MessageType

_NSMAP = {"ceb": CEB_NS}
RETURN_INFO_MAX = 1000
MESSAGE_RETURN_INFO_MAX = 5000


def return_time(now: datetime | None = None) -> str:
    """``YYYYMMDDhhmmssSSS`` (C17) in China Standard Time."""
    now = (now or datetime.now(UTC)).astimezone(BEIJING)
    return now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}"


def new_guid() -> str:
    return str(uuid.uuid4()).upper()


def _el(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{CEB_NS}}}{name}").text = text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(slots=True)
class DocumentReturn:
    """One document's line in a receipt: the head fields it echoes and its verdict."""

    fields: dict[str, str]  # head values (guid, keys, copNo …)
    status: str
    info: str


# Exact lengths a receipt imposes on fields the filing may carry shorter; longer ones are clipped.
_EXACT_LENGTH = {"preNo": 18, "invtNo": 18, "customsCode": 4}
_MAX_LENGTH = {"copNo": 20, "rkdNo": 18}
_PRE_NO_REQUIRED = {"621", "623", "625"}  # their receipts (622, 624, 626) require preNo

# Export receipts (CEB.md §8.1-8.2) have looser text (most fields may be empty, none needs a minimum)
# but more required elements. Each field: its maximum length, and whether the receipt requires it.
_EXPORT_MAX_LENGTH = {
    "ebpCode": 18, "ebcCode": 18, "agentCode": 18, "operatorCode": 18, "logisticsCode": 18,
    "orderNo": 60, "payNo": 60, "logisticsNo": 32, "copNo": 30, "coElNo": 30, "billNo": 37,
    "invtNo": 20,
}
_EXPORT_LOGISTICS_NO_MAX = {"216": 80}  # the return tally's receipt takes the long inbound numbers
# Fields an export receipt may leave out: everything else in its receipt_fields is required.
_EXPORT_OPTIONAL = {
    "404": {"payNo"},
    "214": {"ebpCode", "ebcCode", "preNo"},
    "216": {"preNo"},
    "702": {"sumNo"},
}
# Receipts whose preNo must be exactly 18 characters (a refused filing has none: 18 zeros).
_EXPORT_PRE_NO_REQUIRED = {"507", "509", "603", "605", "607", "701"}
_DIGITS9 = 9


def document_fields(mtype: MessageType, head: dict[str, str], pre_no: str | None) -> dict[str, str]:
    """The values a receipt echoes for one document, filled where the receipt needs more than was filed.

    ``preNo`` is the pre-entry number swx assigns; a refused document has none and its receipt, which
    requires one, carries 18 zeros. A list receipt requires ``copNo``, which the filing may leave out,
    so the order (or list) number stands in for it. Export receipts: see :func:`_export_fields`.
    """
    if mtype.direction == "export":
        return _export_fields(mtype, head, pre_no)
    out: dict[str, str] = {}
    for name in mtype.receipt_fields:
        value = head.get(name) or ""
        if name == "preNo":
            value = pre_no or ("0" * 18 if mtype.code in _PRE_NO_REQUIRED else "")
        elif name == "copNo" and not value:
            value = head.get("orderNo") or head.get("invtNo") or ""
        if name in _MAX_LENGTH:
            value = value[: _MAX_LENGTH[name]]
        if name in _EXACT_LENGTH and len(value) != _EXACT_LENGTH[name]:
            value = ""
        if value:
            out[name] = value
    return out


def _export_fields(mtype: MessageType, head: dict[str, str], pre_no: str | None) -> dict[str, str]:
    """An export receipt's values. Its required elements are always there, empty where the schema lets
    them be (``invtNo`` before customs assigns one, a 507's missing ``billNo``, a 403's ``ebcCode``);
    where it does not:

    - ``preNo`` (508, 510, 604, 606, 608, 702: exactly 18): the assigned one, else 18 zeros; on 214
      and 216 it is optional and left out when there is none;
    - ``msgSeqNo`` (an int): the filed one, else 1, the one part of an unsplit filing;
    - ``statisticsFlag`` (604, one character): the filed one, else ``B`` (summary declaration, the
      mode that claims nothing that ``A`` would need to be checked for) **(ours)**;
    - ``sumNo`` (702, optional, exactly 18): only a well-formed one.
    """
    optional = _EXPORT_OPTIONAL.get(mtype.receipt_code, set())
    out: dict[str, str] = {}
    for name in mtype.receipt_fields:
        value = head.get(name) or ""
        if name == "guid":
            value = value if len(value) == 36 else new_guid()  # only a filing that failed its schema lacks one
        elif name == "preNo":
            value = (pre_no or "")[:18]
            if mtype.code in _EXPORT_PRE_NO_REQUIRED and len(value) != 18:
                value = "0" * 18
        elif name == "sumNo":
            value = value if len(value) == 18 else ""
        elif name == "msgSeqNo":
            value = value.strip()
            value = value if value.isascii() and value.isdigit() and len(value.lstrip("0")) <= _DIGITS9 else "1"
        elif name == "statisticsFlag":
            value = value.strip()
            value = value if len(value) == 1 else "B"
        else:
            limit = _EXPORT_LOGISTICS_NO_MAX.get(mtype.receipt_code, 32) if name == "logisticsNo" else _EXPORT_MAX_LENGTH.get(name)
            value = value[:limit] if limit is not None else value
        if value or name not in optional:
            out[name] = value
    return out


def receipt_xml(mtype: MessageType, returns: list[DocumentReturn], *, now: datetime | None = None) -> str:
    """A ``CEBnnnMessage`` receipt with one return node per document."""
    root = etree.Element(f"{{{CEB_NS}}}{mtype.receipt_root}", nsmap=_NSMAP, guid=new_guid(), version="1.0")
    stamp = return_time(now)
    for r in returns:
        node = etree.SubElement(root, f"{{{CEB_NS}}}{mtype.receipt_node}")
        for name in mtype.receipt_fields:
            if name in r.fields:
                _el(node, name, r.fields[name])
        _el(node, "returnStatus", r.status)
        _el(node, "returnTime", stamp)
        _el(node, "returnInfo", _clip(r.info or "-", RETURN_INFO_MAX))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def message_return_xml(
    info: str,
    *,
    code: str,
    ori_message_type: str | None,
    ori_cop_msg_id: str | None,
    now: datetime | None = None,
) -> str:
    """A CEB900 ``MessageReturn``: the answer to a message that could not be read or failed its schema."""
    root = etree.Element(f"{{{CEB_NS}}}CEB900Message", nsmap=_NSMAP, guid=new_guid(), version="1.0")
    node = etree.SubElement(root, f"{{{CEB_NS}}}MessageReturn")
    _el(node, "guid", new_guid())
    _el(node, "returnStatus", f"-{code.lstrip('-')}")
    _el(node, "returnInfo", _clip(info or "-", MESSAGE_RETURN_INFO_MAX))
    _el(node, "returnTime", return_time(now))
    _el(node, "oriCopMsgId", (ori_cop_msg_id or "")[:255])
    _el(node, "oriMessageType", (ori_message_type or "")[:15])
    _el(node, "oriBizMessage", "")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")
