"""What routing refuses: deliveries, inboxes, regulators' receipts, declarations (RFC 9457 at the edge)."""

from __future__ import annotations

from ..errors import BadRequest, Conflict, Forbidden, Invalid, NotFound


class UnknownState(BadRequest):
    type = "unknown-state"
    description = "A delivery state is one of pending, delivered, acknowledged, dead."


class DeliveryNotFound(NotFound):
    type = "delivery-not-found"
    description = "No delivery has that id."


class NotRetryable(Conflict):
    type = "not-retryable"
    description = "Only a dead or pending delivery is sent again."


class NotYourRegulator(Forbidden):
    type = "not-your-regulator"
    description = "The key belongs to another regulator than the one named in the path."


class PushRegulator(Conflict):
    type = "push-regulator"
    description = "The regulator is served by push; its inbox exists only with mode = \"pull\" in the routing table."


class NothingToAcknowledge(Invalid):
    type = "nothing-to-acknowledge"
    description = "An acknowledgement names delivery ids or an `upTo` id."


class ReceiptRejected(Invalid):
    type, title = "receipt-rejected", "Receipt rejected"
    description = ("The body is not a CEB receipt a regulator sends, or does not conform to the CEB schema; "
                   "`errors` (or `path` and `line`) say where.")


class ReceiptUnmatched(Conflict):
    type = "receipt-unmatched"
    description = "A return node answers no document filed at this window (by guid, or a tax bill by invtNo)."


class NotRoutedHere(Conflict):
    type = "not-routed-here"
    description = "The receipt answers a document that was never routed to this regulator."


class DeclarationNotFound(NotFound):
    type = "declaration-not-found"
    description = "No declaration for that platform and order number that the caller may read."


class SummaryNotFound(NotFound):
    type = "summary-not-found"
    description = "No export summary request with that agent code and number that the caller may read."
