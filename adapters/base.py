"""The adapter contract: what the dispatcher hands an adapter, and what it answers.

An adapter is built once per push regulator as ``Adapter(endpoint, settings)``: ``endpoint`` says
where the regulator is, ``settings`` how to talk to it. ``deliver`` takes one :class:`Outgoing` and
answers a :class:`DeliveryResult`; it never raises for a regulator's failure (it answers ``ok=False``
with the reason) and knows nothing of the database, the outbox or retries — the dispatcher owns those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one regulator is reached."""

    regulator: str  # customs, inspection, tax or fx
    url: str  # the base URL (or queue, folder … for other adapters)
    receiver_id: str  # its exchange id in the DxpMsg envelopes it receives


@dataclass(frozen=True, slots=True)
class AdapterSettings:
    """How the window talks to every regulator."""

    token: str | None = None  # bearer token the regulator checks on each delivery
    timeout: float = 10.0  # seconds per delivery
    connections: int = 32  # kept-alive connections per regulator (the dispatcher's concurrency)


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
class DeliveryResult:
    ok: bool
    status: int | None = None  # the regulator's status (HTTP, or the transport's own), when there was one
    error: str | None = None  # why it failed, in words for the operator


class Adapter(Protocol):
    """Delivers to one regulator."""

    def __init__(self, endpoint: Endpoint, settings: AdapterSettings) -> None: ...

    async def deliver(self, item: Outgoing) -> DeliveryResult: ...

    async def aclose(self) -> None: ...
