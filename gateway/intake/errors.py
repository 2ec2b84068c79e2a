"""Why intake refuses a filing or a read, as named errors (answered as RFC 9457 problems at the edge)."""

from __future__ import annotations

from ..errors import BadRequest, Conflict, Forbidden, Invalid, NotFound


class MalformedXml(BadRequest):
    type, title = "malformed-xml", "Malformed XML"
    description = "The body is not well-formed XML, or holds a forbidden construct (a DTD, an entity); `errors` says where."


class FilingRejected(Invalid):
    type, title = "filing-rejected", "Filing rejected"
    description = ("The message broke schema or business rules; nothing was stored but the refusal. "
                   "`errors` lists every finding with its code, path and line.")


class ForeignSender(Forbidden):
    type = "foreign-sender"
    description = "`BaseTransfer/copCode` is not the code of the enterprise whose key filed the message."


class GuidConflict(Conflict):
    type = "guid-conflict"
    description = "A different message was already filed with this guid; every message needs its own."


class FilingNotFound(NotFound):
    type = "filing-not-found"
    description = "No filing with that guid is visible to the caller."
