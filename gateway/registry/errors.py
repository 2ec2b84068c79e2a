"""What the regulators' side of the registry refuses (answered as RFC 9457 problems at the edge)."""

from __future__ import annotations

from ..errors import Forbidden


class NotShared(Forbidden):
    type = "not-shared"
    description = "The sharing policy shares no registration with this regulator."


class AccessLogPrivate(Forbidden):
    type = "access-log-private"
    description = "The access log of a registration is the enterprise's and the operator's, not a regulator's."
