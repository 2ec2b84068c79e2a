"""What a regulator stand-in is handed: a delivered CEB message and its documents.

Its own module so that reading a delivery (``inbound``) and the regulators' base (``base``) can
both stand on these types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.catalog import FILED, SUMMARY_RESULT_CODE, MessageType

# Customs' summary result (CEB792, CEB.md §8.1): issued by customs, not filed, so not in the catalog;
# the window delivers it to tax and FX, which read it like a filing.
SUMMARY_RESULT = MessageType(
    SUMMARY_RESULT_CODE, "summary_result", "summary result", "SummaryResult", "SummaryResultHead",
    "SummaryResultList", ("sumNo", "declSeqNo"), "", "", (), False, 100, "", "", "", "", "", direction="export",
)


@dataclass
class ReceivedDoc:
    index: int  # 1-based position in the message
    head: dict[str, str]  # head fields (local names -> text)
    lines: list[dict[str, str]]  # line fields per line (OrderList, InventoryList, …), [] if none


@dataclass
class Delivered:
    delivery_id: str  # X-Swx-Delivery
    guid: str  # the CEB message guid (root attribute)
    code: str  # "621", … (schemas.catalog FILED key)
    filer: str  # X-Swx-Filer
    raw: bytes  # the CEB message bytes (unwrapped from DxpMsg Data)
    docs: list[ReceivedDoc]  # only the documents not received before (deduped by head guid)

    @property
    def mtype(self) -> MessageType:
        return SUMMARY_RESULT if self.code == SUMMARY_RESULT.code else FILED[self.code]
