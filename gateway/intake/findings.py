"""The one shape every problem with a filing takes, at every layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Layer = Literal["xml", "schema", "rule"]

# Exchange-platform codes (CEB.md §5) for problems that are not business rules.
MALFORMED = "0001"
SCHEMA_INVALID = "0002"
RECEIVER_UNKNOWN = "2001"
ADDRESS_MISMATCH = "2002"
OTHER_BUSINESS = "2999"
BAD_ENTERPRISE_CODE = "-10102"


@dataclass(frozen=True, slots=True)
class Finding:
    layer: Layer
    code: str
    message: str
    path: str | None = None
    line: int | None = None
    document: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def schema_failed(findings: list[Finding]) -> bool:
    """Whether the message broke its schema (then its documents cannot be read, nor judged further)."""
    return any(f.layer == "schema" for f in findings)


def worst_code(findings: list[Finding]) -> str:
    """The code a one-line receipt carries for a set of findings: the first business code, else the first."""
    for f in findings:
        if f.code.startswith("-"):
            return f.code
    return findings[0].code if findings else OTHER_BUSINESS
