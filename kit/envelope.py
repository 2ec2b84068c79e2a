"""The ``DxpMsg`` envelope of the customs data exchange platform: one CEB message in Base64 ``Data``.

Firms may file inside one, regulators receive every delivery inside one and may answer inside one.
Wrapping is written as text (the payload is opaque and this runs per delivery); unwrapping takes an
envelope already parsed by the caller's safe parser and hands back the inner message's bytes.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from lxml import etree

from .times import BEIJING

DXP_NS = "http://www.chinaport.gov.cn/dxp"
DXP_ROOT = f"{{{DXP_NS}}}DxpMsg"
WINDOW_ID = "DXPSWX0000000001"  # the window's own exchange id


class EnvelopeError(ValueError):
    """The envelope holds no readable message; the text says why, ``path`` and ``line`` where."""

    def __init__(self, message: str, path: str = "/dxp:DxpMsg/dxp:Data", line: int | None = None) -> None:
        super().__init__(message)
        self.message, self.path, self.line = message, path, line


def is_envelope(root: etree._Element) -> bool:
    return root.tag == DXP_ROOT


def dxp_payload(root: etree._Element) -> bytes:
    """The message in a parsed ``DxpMsg``'s ``Data``, decoded from Base64 (whitespace allowed)."""
    data = root.find(f"{{{DXP_NS}}}Data")
    text = data.text if data is not None else None
    if not text or not text.strip():
        raise EnvelopeError("the DxpMsg has no Data", line=data.sourceline if data is not None else None)
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("DxpMsg Data is not valid Base64", line=data.sourceline) from None


def dxp_envelope(message: bytes, *, msg_type: str, receiver_id: str, cop_msg_id: str, sender_id: str = WINDOW_ID,
                 created: datetime | None = None) -> bytes:
    """``message`` in a ``DxpMsg`` from ``sender_id`` (the window by default) to ``receiver_id``."""
    when = (created or datetime.now(UTC)).astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<DxpMsg xmlns="{DXP_NS}" ver="1.0">'
        f"<TransInfo><CopMsgId>{escape(cop_msg_id)}</CopMsgId><SenderId>{escape(sender_id)}</SenderId>"
        f"<ReceiverIds><ReceiverId>{escape(receiver_id)}</ReceiverId></ReceiverIds>"
        f"<CreatTime>{when}</CreatTime><MsgType>{escape(msg_type)}</MsgType></TransInfo>"
        f"<Data>{base64.b64encode(message).decode('ascii')}</Data>"
        "</DxpMsg>\n"
    ).encode()
