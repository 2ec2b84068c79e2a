"""What a filing is answered: the stored answer of an accepted one, or the error and CEB receipt of a refusal.

A refusal is an outcome, not a failure of the request: it is stored (with its receipt in the sender's
feed) and answered, so it travels as a :class:`FilingResult` carrying its named error; the edge
renders the error as a problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.catalog import APP_TYPES, BY_ROOT, STATUS_SAVED
from schemas.documents import FiledDocument

from ..auth import Principal
from ..errors import DomainError
from ..models import Message
from .errors import FilingRejected, ForeignSender, GuidConflict, MalformedXml
from .findings import MALFORMED, SCHEMA_INVALID, Finding, schema_failed, worst_code
from .parts import part_words
from .receipts import DocumentReturn, document_fields, findings_text, message_return_xml, receipt_xml
from .validate import Checked

Filing = tuple[Checked, Principal]


@dataclass(slots=True)
class FilingResult:
    """The answer to one filing: ``answer`` when it was accepted, else ``error``; the CEB receipt if any."""

    answer: dict | None
    error: DomainError | None = None
    xml: str | None = None  # the CEB receipt, when there is one
    receipt_type: str | None = None  # "312", …, "900"
    replay: bool = False

    @property
    def status(self) -> int:
        return 201 if self.error is None else self.error.status

    @property
    def message_type(self) -> str | None:
        source = self.answer if self.answer is not None else (self.error.extra if self.error else {})
        return source.get("messageType")


def replayed(prior: Message, checked: Checked) -> FilingResult:
    """A guid filed before: the first answer again for the same content, a conflict for other content."""
    if prior.digest == checked.digest:
        return FilingResult(prior.answer, None, prior.answer_xml, BY_ROOT[prior.answer["messageType"]].receipt_code, replay=True)
    return FilingResult(None, GuidConflict(
        f"a different message with guid {checked.guid} was filed at {prior.received_at.isoformat()}; "
        "every message needs its own guid (resend identical content to get the first answer again)",
        guid=checked.guid,
    ))


def rejected(checked: Checked, findings: list[Finding]) -> FilingResult:
    error = FilingRejected(
        f"{len(findings)} problem(s) found; nothing was stored. Fix them all and file again.",
        guid=checked.guid, messageType=checked.message_type, errors=[f.as_dict() for f in findings],
    )
    if checked.mtype is None or schema_failed(findings):
        xml = message_return_xml(findings, code=SCHEMA_INVALID, ori_message_type=checked.message_type, ori_cop_msg_id=checked.guid)
        return FilingResult(None, error, xml, "900")
    return FilingResult(None, error, receipt_xml(checked.mtype, _rejected_returns(checked, findings)), checked.mtype.receipt_code)


def _rejected_returns(checked: Checked, findings: list[Finding]) -> list[DocumentReturn]:
    by_doc: dict[str, list[Finding]] = {}
    for f in findings:
        by_doc.setdefault(f.document or "", []).append(f)
    general = by_doc.get("", [])
    out = []
    for doc in checked.docs:
        own = by_doc.get(doc.label, []) + general
        if own:
            status, info = worst_code(own), findings_text(own)
        else:
            status, info = worst_code(findings), "not stored: another document of this message was rejected"
        out.append(DocumentReturn(document_fields(checked.mtype, doc.head.values(), None), status, info))
    return out


def malformed(finding: Finding) -> FilingResult:
    xml = message_return_xml([finding], code=MALFORMED, ori_message_type=None, ori_cop_msg_id=None)
    return FilingResult(None, MalformedXml(finding.message, errors=[finding.as_dict()]), xml, "900")


def foreign_sender(checked: Checked, finding: Finding) -> FilingResult:
    return FilingResult(None, ForeignSender(finding.message, guid=checked.guid, errors=[finding.as_dict()]))


def return_info(doc: FiledDocument, version: int) -> str:
    """The returnInfo of an accepted document's receipt."""
    action = APP_TYPES.get(doc.app_type, "new")
    if doc.app_type == "3":
        return f"deleted at the single window (version {version})"
    state = "saved (appStatus 1), not yet declared" if doc.app_status == STATUS_SAVED else "declared; passed to customs"
    return f"{action} {doc.mtype.title} accepted by the single window, version {version}: {state}{part_words(doc)}"
