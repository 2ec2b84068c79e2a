"""The adapter interface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery as an adapter sees it: what to send, to whom, with which ids."""

    delivery_id: int
    regulator: str
    kind: str  # "message" (a CEB message, sent in a DxpMsg) or "registration" (a JSON view)
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: int | None = None  # the regulator's HTTP status, when there was one
    error: str | None = None  # why it failed, in words for the operator


class Adapter(Protocol):
    """Delivers to one regulator. Built once per regulator: ``Adapter(endpoint, settings)``."""

    async def deliver(self, item: Outgoing) -> Outcome: ...

    async def aclose(self) -> None: ...
