"""The DxpMsg envelope a regulator receives: the filed message, untouched, in Base64 ``Data``.

Written as text rather than built with lxml: the payload is opaque here and this runs per delivery.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from xml.sax.saxutils import escape

WINDOW_ID = "DXPSWX0000000001"  # the window's own exchange id
BEIJING = timezone(timedelta(hours=8))


def dxp_envelope(message: bytes, *, msg_type: str, receiver_id: str, cop_msg_id: str, created: datetime | None = None) -> bytes:
    when = (created or datetime.now(UTC)).astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M:%S")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<DxpMsg xmlns="http://www.chinaport.gov.cn/dxp" ver="1.0">'
        f"<TransInfo><CopMsgId>{escape(cop_msg_id)}</CopMsgId><SenderId>{WINDOW_ID}</SenderId>"
        f"<ReceiverIds><ReceiverId>{escape(receiver_id)}</ReceiverId></ReceiverIds>"
        f"<CreatTime>{when}</CreatTime><MsgType>{escape(msg_type)}</MsgType></TransInfo>"
        f"<Data>{base64.b64encode(message).decode('ascii')}</Data>"
        "</DxpMsg>\n"
    ).encode()
