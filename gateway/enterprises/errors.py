"""What the registry refuses, as named errors (answered as RFC 9457 problems at the edge)."""

from __future__ import annotations

from ..errors import Conflict, Forbidden, NotFound


class EnterpriseNotFound(NotFound):
    type = "enterprise-not-found"
    description = "No enterprise is registered under that customs code or USCC, or it is not the caller's."

    def __init__(self, code: str) -> None:
        super().__init__(f"no enterprise {code} is registered")


class VersionNotFound(NotFound):
    type = "version-not-found"
    description = "The registration has no such version (or none that was shared)."


class KeyNotFound(NotFound):
    type = "key-not-found"
    description = "The enterprise or regulator has no API key with that id."


class CodeTaken(Conflict):
    type = "code-taken"
    description = "The customs code or USCC is already registered to another enterprise."


class EnterpriseCancelled(Conflict):
    type = "enterprise-cancelled"
    description = "The enterprise is cancelled: its registration can no longer change and it gets no new keys."


class ChangePending(Conflict):
    type = "change-pending"
    description = "A change of identity or roles already waits for the operator's decision; one at a time."


class VersionNotPending(Conflict):
    type = "version-not-pending"
    description = "Only a pending version can be approved or rejected."


class StatusTransition(Conflict):
    type = "status-transition"
    description = "The lifecycle action does not apply to the enterprise's current status."


class EnterpriseInactive(Forbidden):
    type = "enterprise-inactive"
    description = "A suspended or cancelled enterprise cannot file or change its record."


class RegulatorReadsRegistry(Forbidden):
    type = "regulator-reads-registry"
    description = "Regulators read registrations through /v1/registry, in the view the sharing policy gives them."
