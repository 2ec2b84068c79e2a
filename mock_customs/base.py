"""What every regulator stand-in is built on: its context and its base class.

A stand-in only decides. The framework (``app.py``) reads and dedupes deliveries (``inbound``, into
the types of ``documents``), applies faults and guards the admin endpoints; the :class:`Context`
carries verdicts back to the window as CEB receipts through its sender (``sender``), at least once,
however long the window is away: several at a time, each document's in the order they were decided.
A real regulator is judged on the same wire contract (docs/regulators.md), so the stand-ins talk to
the window over HTTP only.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Annotated, Any

import fastapi
import httpx

from mock_customs.config import MockSettings
from mock_customs.documents import Delivered
from mock_customs.sender import KEEPALIVE_EXPIRY, ReceiptSender


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Context:
    """A regulator's link to the window: its receipt sender, registry reads, and its background tasks.

    Everything starts lazily on first use, so a stand-in works even when mounted inside another app
    whose lifespan never reaches it; :meth:`stop` (the app's lifespan) shuts it down cleanly.
    Receipts go through :class:`~mock_customs.sender.ReceiptSender` (in order per document, merged,
    retried while the window is away); the receipt methods here hand over to it.
    """

    KEEPALIVE_EXPIRY = KEEPALIVE_EXPIRY  # the reads' idle connections go as the senders' do

    def __init__(self, name: str, settings: MockSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = name
        self.settings = settings
        self.log = logging.getLogger(f"swx.mock.{name}")
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        # Tests give one transport for everything: then the receipts go through the reads' client too.
        self.sender = ReceiptSender(name, settings, shared=(lambda: self.client) if transport is not None else None)
        self._tasks: set[asyncio.Task] = set()

    # -- the window --
    @property
    def client(self) -> httpx.AsyncClient:
        """Registry and declaration reads (the tax stand-in polls with many at once)."""
        if self._client is None:
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=100,
                                  keepalive_expiry=self.KEEPALIVE_EXPIRY)
            self._client = httpx.AsyncClient(timeout=10.0, transport=self._transport, limits=limits)
        return self._client

    async def gateway_get(self, path: str, params: dict | None = None) -> httpx.Response:
        """GET on the window with this regulator's key (errors are the caller's to handle)."""
        return await self.client.get(self.settings.window_url(path), params=params,
                                     headers=self.settings.auth_headers(self.name))

    # -- receipts (the sender's) --
    @property
    def receipts(self) -> dict[str, int]:
        """Receipts queued, sent, dropped, and retries so far."""
        return self.sender.receipts

    @property
    def messages(self) -> dict[str, int]:
        """Receipt messages the window took, merged ones, merged ones split."""
        return self.sender.messages

    async def start(self) -> None:
        """Start the receipt senders (idempotent; sending a receipt starts them too)."""
        await self.sender.start()

    async def send_receipt(self, xml: bytes | str, keys: Iterable[str] | None = None) -> None:
        """Queue one CEB receipt (:meth:`ReceiptSender.send_receipt`)."""
        await self.sender.send_receipt(xml, keys)

    async def idle(self) -> None:
        """Wait until every queued receipt has been taken or dropped (tests, drills)."""
        await self.sender.idle()

    def sender_state(self) -> dict[str, int]:
        """The counters, and what is waiting now (``GET /_admin/state``)."""
        return self.sender.sender_state()

    def message_state(self) -> dict[str, int]:
        """Receipt messages the window took, those of several receipts, merged ones split (``GET /_admin/state``)."""
        return self.sender.message_state()

    # -- background work --
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """A tracked background task: cancelled on shutdown, its exception logged rather than lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("background task failed", exc_info=task.exception())

    def later(self, seconds: float, coro_fn: Callable[[], Awaitable[Any]]) -> None:
        """Run ``coro_fn()`` after ``seconds`` (a timer that dies with the app)."""

        async def run() -> None:
            await asyncio.sleep(seconds)
            await coro_fn()

        self.spawn(run())

    async def stop(self) -> None:
        """Cancel every spawned task, then the receipt senders, and close the HTTP clients."""
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.sender.stop()
        if self._client is not None:
            await self._client.aclose()
        self._client = None

    # -- guards (FastAPI dependencies) --
    def require_delivery(self, authorization: Annotated[str | None, fastapi.Header()] = None) -> None:
        """Deliveries carry the window's delivery token when one is configured."""
        token = self.settings.delivery_token
        if token is not None and not _same(_bearer(authorization), token):
            raise fastapi.HTTPException(401, "a delivery must carry the window's delivery token (Authorization: Bearer …)",
                                        headers={"WWW-Authenticate": "Bearer"})

    def require_operator(self, authorization: Annotated[str | None, fastapi.Header()] = None) -> None:
        """Admin endpoints take the operator token; without one configured they are closed."""
        token = self.settings.operator_token
        if token is None:
            raise fastapi.HTTPException(403, "admin endpoints are disabled: no operator token is configured")
        if not _same(_bearer(authorization), token):
            raise fastapi.HTTPException(401, "the operator token is required (Authorization: Bearer …)",
                                        headers={"WWW-Authenticate": "Bearer"})


class Regulator:
    """One regulator stand-in. Subclasses set ``name`` and override what they act on."""

    name: str = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def prepare(self, msg: Delivered) -> None:
        """Called before :meth:`on_message`, outside the one-delivery-at-a-time lock, with every document
        of the message (duplicates too): the place for slow reads (the window's registry, say) that
        deciding needs, so that other deliveries are not held up behind them. Must not record anything."""

    async def on_message(self, msg: Delivered) -> None:
        """New documents of a delivered CEB message; return once they are recorded."""

    async def on_registration(self, view: dict) -> None:
        """A registration version the window shares with this regulator."""

    def router(self) -> fastapi.APIRouter | None:
        """Extra endpoints, mounted under the regulator's prefix (e.g. its own admin actions)."""
        return None

    def state(self) -> dict:
        """A JSON snapshot for ``GET /_admin/state``."""
        return {}
