"""The business-key rule (CEB.md §2): what ``appType`` may do given what is already stored.

``1`` needs a key that is free (or withdrawn), ``2`` and ``3`` a key of the caller's in a state that
may still change. Pure: the repository reads the stored documents, this judges them.
"""

from __future__ import annotations

from schemas.catalog import STATUS_DECLARED, STATUS_DELETED, STATUS_SAVED, changeable
from schemas.documents import FiledDocument

from ..models import Document
from .findings import Finding


def document_status(doc: FiledDocument) -> str:
    """The state a document takes when this filing of it is stored."""
    if doc.app_type == "3":
        return STATUS_DELETED
    return STATUS_SAVED if doc.app_status == STATUS_SAVED else STATUS_DECLARED


def key_findings(docs: list[FiledDocument], stored: dict[tuple[str, str], Document], caller: str | None) -> list[Finding]:
    """appType against what is stored: 1 needs a free key, 2 and 3 a key of the caller's in a changeable state."""
    findings = []
    for doc in docs:
        mt, row = doc.mtype, stored.get((doc.mtype.kind, doc.key_text))
        live = row is not None and row.status != STATUS_DELETED
        name = mt.key[-1]
        keys = ", ".join(f"{k}={v}" for k, v in zip(doc.key_names, doc.key))
        if doc.app_type == "1" and live:
            findings.append(Finding(
                "rule", mt.duplicate_code,
                f"a {mt.title} with {keys} has already been filed; to change it file appType 2, to withdraw it appType 3",
                doc.head.path(name), doc.head.line(name), doc.label,
            ))
        elif doc.app_type in ("2", "3"):
            verb = "change" if doc.app_type == "2" else "delete"
            if not live or (caller is not None and row.owner_code != caller):
                findings.append(Finding(
                    "rule", mt.missing_code,
                    f"there is no {mt.title} with {keys} of yours to {verb} (appType {doc.app_type}); file it first with appType 1",
                    doc.head.path("appType"), doc.head.line("appType"), doc.label,
                ))
            elif not changeable(row.kind, row.status):
                findings.append(Finding(
                    "rule", mt.state_code,
                    f"the {mt.title} with {keys} is in state {row.status} and can no longer be {verb}d",
                    doc.head.path("appType"), doc.head.line("appType"), doc.label,
                ))
    return findings
