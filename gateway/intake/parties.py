"""Every enterprise a document names is checked against the registry (CEB.md §7).

The enterprise must be registered, active, within its validity period and hold the role the field
implies, and the name in the message must be its registered name. Findings: -10102 for an unknown,
inactive or misnamed code, -10101 for a code without the role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from schemas.catalog import ENTERPRISE_FIELDS, PLACEHOLDERS
from schemas.documents import FiledDocument
from schemas.identifiers import enterprise_code_problem

from .findings import BAD_ENTERPRISE_CODE, Finding
from .receipts import BEIJING

WRONG_ROLE = "-10101"
# The field that carries each code's enterprise name, where the message has one.
NAME_FIELDS = {
    "ebpCode": "ebpName", "ebcCode": "ebcName", "payCode": "payName", "logisticsCode": "logisticsName",
    "agentCode": "agentName", "areaCode": "areaName", "operatorCode": "operatorName", "declAgentCode": "declAgentName",
}
# A tax guarantor may be a registered guarantor or one of the parties that may stand surety for
# their own lists: the seller, the platform or the declaring agent.
ACCEPTED_ROLES = {field: {role} for field, role in ENTERPRISE_FIELDS.items()}
ACCEPTED_ROLES["assureCode"] = {"assure", "ebc", "ebp", "agent"}
ROLE_WORDS = {
    "ebp": "e-commerce platform", "ebc": "e-commerce seller", "pay": "payment firm", "logistics": "logistics firm",
    "agent": "declaring agent", "assure": "tax guarantor", "area": "bonded-zone enterprise", "operator": "supervised-site operator",
}


@dataclass(frozen=True, slots=True)
class Registered:
    code: str
    name: str
    roles: frozenset[str]
    status: str
    valid_from: date | None
    valid_to: date | None

    def inactive_reason(self, today: date) -> str | None:
        if self.status != "active":
            return f"is {self.status}"
        if self.valid_from and today < self.valid_from:
            return f"is registered only from {self.valid_from.isoformat()}"
        if self.valid_to and today > self.valid_to:
            return f"registration expired on {self.valid_to.isoformat()}"
        return None


def named_codes(docs: list[FiledDocument], transmitter: str | None = None) -> set[str]:
    codes = {v for d in docs for f in ENTERPRISE_FIELDS if (v := d.head.text(f))}
    return codes | {transmitter} if transmitter else codes


def transmitter_findings(docs: list[FiledDocument], transmitter: str | None, registry: dict[str, Registered]) -> list[Finding]:
    """Export (ours, CEB.md §8.1): the transmitter is a party the document names, or a registered agent."""
    if not docs or docs[0].mtype.direction != "export" or not transmitter:
        return []
    reg = registry.get(transmitter)
    if reg is not None and "agent" in reg.roles:
        return []
    out = []
    for doc in docs:
        named = {doc.head.text(f) for f in ENTERPRISE_FIELDS}
        if transmitter not in named:
            fields = ", ".join(f for f in ENTERPRISE_FIELDS if doc.head.text(f))
            out.append(Finding(
                "rule", WRONG_ROLE,
                f"{transmitter} files this {doc.mtype.title} but is none of its parties ({fields}) and not a registered "
                "declaring agent: a firm transmits only documents it is named in, or as an agent",
                doc.head.path(doc.mtype.key[0]), doc.head.line(doc.mtype.key[0]), doc.label,
            ))
    return out


def party_findings(docs: list[FiledDocument], registry: dict[str, Registered], today: date | None = None) -> list[Finding]:
    today = today or datetime.now(BEIJING).date()
    findings = []
    for doc in docs:
        h = doc.head
        for field, role in ENTERPRISE_FIELDS.items():
            code = h.text(field)
            if not code or PLACEHOLDERS.get(field) == code or enterprise_code_problem(code):
                continue  # absent, a placeholder (无: no code), or already reported as a malformed code
            reg = registry.get(code)

            def finding(code_: str, message: str, at: str = field) -> Finding:
                return Finding("rule", code_, message, h.path(at), h.line(at), doc.label)

            if reg is None:
                findings.append(finding(BAD_ENTERPRISE_CODE, f"{field} {code} is not a registered enterprise"))
                continue
            reason = reg.inactive_reason(today)
            if reason:
                findings.append(finding(BAD_ENTERPRISE_CODE, f"{field} {code}: the enterprise {reason}"))
                continue
            if not reg.roles & ACCEPTED_ROLES[field]:
                findings.append(finding(
                    WRONG_ROLE,
                    f"{field} {code} is not registered as a {ROLE_WORDS[role]} (its roles: {', '.join(sorted(reg.roles))})",
                ))
            name_field = NAME_FIELDS.get(field)
            name = h.text(name_field) if name_field else None
            if name is not None and name != reg.name:
                findings.append(finding(
                    BAD_ENTERPRISE_CODE, f"{name_field} '{name}' is not the registered name of {code} ('{reg.name}')", name_field
                ))
    return findings
