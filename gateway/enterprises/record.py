"""The registration record's fields (CEB.md §7), shared by the registry and the sharing policy."""

from __future__ import annotations

from enum import StrEnum

# Roles of CEB.md §7.
ROLES = ("ebp", "ebc", "pay", "logistics", "agent", "assure", "area", "operator")
CREDIT_RATINGS = ("advanced", "general", "dishonest")  # advanced certified, general, dishonest


class EnterpriseStatus(StrEnum):
    """An enterprise's lifecycle: it files while active; suspension is undone by reinstatement; cancellation is final."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


STATUSES = tuple(EnterpriseStatus)

# Every field of a registration record, in the order views list them.
FIELDS = (
    "customsCode", "uscc", "name", "customsOffice", "regionCode", "economicZone", "businessCategories",
    "roles", "creditRating", "validFrom", "validTo", "contact", "dxpId", "certificates",
)
# Carried by every view of a record, whatever the sharing policy says.
METADATA = ("code", "version", "status")
# Changes to these, filed by the enterprise itself, wait for the operator's approval (roles too).
IDENTITY = ("customsCode", "uscc", "name")
NEEDS_APPROVAL = (*IDENTITY, "roles")
