"""What a regulator stand-in is handed: a delivered CEB message and its documents.

Its own module so that reading a delivery (``inbound``) and the regulators' base (``base``) can
both stand on these types without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.catalog import FILED, MessageType


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
        return FILED[self.code]
