"""A sample set as it is built, before it is written: declarations and the filings of each.

The generator makes them and the fault constructions change them; both stand on this module, so
neither needs the other's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from schemas.builder import Doc, Parties

from .cast import Buyer, Firm

ACCEPTED: dict[str, Any] = {"outcome": "accepted"}


@dataclass
class Filing:
    """One file of the set before it is serialised."""

    code: str
    sender: Any  # cast.Firm whose key files it
    docs: list[Doc]
    fault: str | None = None
    expect: dict[str, Any] = field(default_factory=lambda: dict(ACCEPTED))
    cop: Any = None  # cast.Firm named in BaseTransfer when it is not the sender
    sign: bool | None = None
    guid: str | None = None
    raw: Callable[[bytes], bytes] | None = None  # change the serialised CEB message
    envelope: bool | None = None  # None: as the sender usually sends
    env: dict[str, str] = field(default_factory=dict)  # wrap_dxp arguments
    env_raw: Callable[[bytes, bytes], bytes] | None = None  # change the serialised envelope (given the message)
    role: str = ""  # "clean" (a document of the declaration), "fault" (refused), "extra" (513, 711, a change)


@dataclass
class Decl:
    id: str
    firms: dict[str, Firm]
    parties: Parties
    docs: dict[str, Doc]
    buyer: Buyer
    fault: str | None = None
    after: str | None = None
    expect: dict[str, Any] = field(default_factory=lambda: {"state": "released"})
    filings: list[Filing] = field(default_factory=list)
    missing: str | None = None  # a document never filed (match.missing-document)
    labelled: str | None = None  # the document carrying a declaration fault

    @property
    def paid(self) -> Decimal:
        return Decimal(self.docs["order"].head["acturalPaid"])

    @property
    def year(self) -> str:
        return self.docs["inventory"].head["declTime"][:4]

    @property
    def charged(self) -> bool:
        """Whether customs takes this declaration's acturalPaid into the buyer's yearly account."""
        return self.expect["state"] in ("released", "review") or self.expect.get("code") == "-621501"
