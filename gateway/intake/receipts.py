"""The gateway's receipts: the CEB writers in ``schemas.receipts``, and findings put into words."""

from __future__ import annotations

from datetime import datetime

from schemas.receipts import (  # noqa: F401 - re-exported for intake
    BEIJING,
    RETURN_INFO_MAX,
    DocumentReturn,
    document_fields,
    new_guid,
    receipt_xml,
    return_time,
)
from schemas.receipts import message_return_xml as _message_return_xml

from .findings import Finding


def findings_text(findings: list[Finding]) -> str:
    parts = []
    for f in findings:
        where = f" [{f.path}" + (f", line {f.line}" if f.line else "") + "]" if f.path else ""
        parts.append(f"{f.code} {f.message}{where}")
    return "; ".join(parts)


def message_return_xml(
    findings: list[Finding], *, code: str, ori_message_type: str | None, ori_cop_msg_id: str | None,
    now: datetime | None = None,
) -> str:
    """A CEB900 ``MessageReturn`` for findings that kept a message from being read or from its schema."""
    return _message_return_xml(
        findings_text(findings), code=code, ori_message_type=ori_message_type, ori_cop_msg_id=ori_cop_msg_id, now=now
    )
