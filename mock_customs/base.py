"""What every regulator stand-in is built on: the documents it is handed, its context, its base class.

A stand-in only decides. The framework (``app.py``) reads and dedupes deliveries, applies faults and
guards the admin endpoints; the :class:`Context` carries verdicts back to the window as CEB
receipts, at least once and in order, however long the window is away. A real regulator is judged
on the same wire contract (docs/regulators.md), so the stand-ins talk to the window over HTTP only.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

import fastapi
import httpx

from mock_customs.config import MockSettings
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


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def _same(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class Context:
    """A regulator's link to the window: the receipt sender, registry reads, and its background tasks.

    Everything starts lazily on first use, so a stand-in works even when mounted inside another app
    whose lifespan never reaches it; :meth:`stop` (the app's lifespan) shuts it down cleanly.
    """

    def __init__(self, name: str, settings: MockSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = name
        self.settings = settings
        self.log = logging.getLogger(f"swx.mock.{name}")
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._queue: asyncio.Queue[bytes] | None = None
        self._sender: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.receipts = {"queued": 0, "sent": 0, "dropped": 0, "retries": 0}

    # -- the window --
    @property
    def _auth(self) -> dict[str, str]:
        key = self.settings.keys.get(self.name)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _url(self, path: str) -> str:
        return self.settings.gateway_url.rstrip("/") + "/" + path.lstrip("/")

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=10.0, transport=self._transport)
        return self._client

    async def gateway_get(self, path: str, params: dict | None = None) -> httpx.Response:
        """GET on the window with this regulator's key (errors are the caller's to handle)."""
        return await self.client.get(self._url(path), params=params, headers=self._auth)

    # -- receipts --
    async def start(self) -> None:
        """Start the receipt sender (idempotent; sending a receipt starts it too)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_forever(), name=f"{self.name}-receipts")

    async def send_receipt(self, xml: bytes | str) -> None:
        """Queue one CEB receipt; the sender posts them one at a time, in order, until each is taken."""
        await self.start()
        assert self._queue is not None
        self.receipts["queued"] += 1
        await self._queue.put(xml.encode("utf-8") if isinstance(xml, str) else xml)

    async def _send_forever(self) -> None:
        assert self._queue is not None
        while True:
            body = await self._queue.get()
            try:
                await self._deliver(body)
            finally:
                self._queue.task_done()

    async def _deliver(self, body: bytes) -> None:
        """POST until the window takes it (2xx) or refuses it for good (409 not ours, 422 unreadable)."""
        url = self._url("/v1/regulators/receipts")
        headers = {**self._auth, "Content-Type": "application/xml"}
        attempt = 0
        while True:
            try:
                r = await self.client.post(url, content=body, headers=headers)
                if r.is_success:
                    self.receipts["sent"] += 1
                    return
                if r.status_code in (409, 422):
                    self.receipts["dropped"] += 1
                    self.log.warning("the window refused a receipt (%s): %s", r.status_code, r.text[:500])
                    return
                reason = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            attempt += 1
            self.receipts["retries"] += 1
            if attempt == 1 or attempt % 10 == 0:
                self.log.warning("receipt not delivered (attempt %d, %s); retrying", attempt, reason)
            s = self.settings
            delay = min(s.receipt_backoff_max, s.receipt_backoff * 2 ** min(attempt - 1, 30))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def idle(self) -> None:
        """Wait until every queued receipt has been taken or dropped (tests, drills)."""
        if self._queue is not None:
            await self._queue.join()

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
        """Cancel the sender and every spawned task, then close the HTTP client."""
        pending = [t for t in (*self._tasks, self._sender) if t is not None and not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._queue is not None and self._queue.qsize():
            self.log.warning("%d receipts were not delivered before shutdown", self._queue.qsize())
        self._sender = None
        self._queue = None
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
