"""The receipt sender: how a stand-in's verdicts reach the window, at least once and in order.

A regulator decides in an instant and the window may be slow, away or failing; a verdict must still
arrive, and arrive after the verdicts decided before it about the same document (the window keeps the
last one it is given). This module is that delivery on its own, apart from the regulators' base, so
the ordering, merging and retry rules can be read (and changed) in one place. It reaches the window
over HTTP only, as a real regulator would.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import ssl
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx
from lxml import etree

from adapters.backoff import backoff
from mock_customs.config import MockSettings
from mock_customs.inbound import Unreadable, parse_safely
from schemas.catalog import CEB_NS, FILED
from schemas.receipts import new_guid

MAX_RECEIPT_BYTES = 16 * 1024 * 1024  # far above a receipt of 100 return nodes
# Receipt messages whose root holds nothing but return nodes (Tax bills for CEB816), each standing alone:
# receipts of one of these types can be posted as one message carrying all their nodes. Customs' CEB792
# summary result is left out on purpose: it is a message of its own (its guid, a declaration's parts
# numbered msgCount/msgSeqNo), not a receipt, and the later 792 of a declaration replaces the earlier
# one (CEB.md §8.3), so each goes as customs wrote it, in order per declaration (its lane: declSeqNo).
MERGEABLE = frozenset({m.receipt_root for m in FILED.values()} | {"CEB816Message"})
MERGE_MAX = 100  # return nodes one CEB receipt message may carry (maxOccurs="100"; CEB816's Tax: as many)
# Idle connections are dropped a little before uvicorn's 5 s keep-alive would close them under us.
KEEPALIVE_EXPIRY = 4.0
# Retries past this many attempts wait as long as it does: 2 ** attempt stops fitting a float after
# ~1000 attempts (hours of outage), and the cap is reached long before.
_BACKOFF_ATTEMPTS = 64


def _read_receipt(body: bytes) -> etree._Element | None:
    """A receipt the stand-ins wrote, parsed as hostile all the same (the stand-ins' safe parser)."""
    try:
        return parse_safely(body, MAX_RECEIPT_BYTES)
    except Unreadable:
        return None


def _keys_of(root: etree._Element) -> tuple[str, ...]:
    c = f"{{{CEB_NS}}}"
    if etree.QName(root).localname == "CEB816Message":
        found = (("invtNo", rd.findtext(c + "invtNo")) for rd in root.iter(c + "TaxHeadRd"))
    elif etree.QName(root).localname == "CEB792Message":
        # after the 702 that gave the summary its sumNo: the window finds the summary by it
        found = [(name, h.findtext(c + name)) for h in root.iter(c + "SummaryResultHead") for name in ("sumNo", "declSeqNo")]
    else:
        found = [("guid", node.findtext(c + "guid")) for node in root]
        if etree.QName(root).localname == "CEB702Message":
            found += [("sumNo", node.findtext(c + "sumNo")) for node in root]
    return tuple(dict.fromkeys(f"{name}:{value}" for name, value in found if value))


def receipt_keys(body: bytes) -> tuple[str, ...]:
    """What a receipt is about, as the window finds it: each return node's ``guid`` (the filed head's),
    each tax bill's ``invtNo``, or each summary result's ``declSeqNo`` and ``sumNo`` (CEB792; a CEB702 is
about its ``sumNo`` too, so a 792 waits for the 702 that numbered its summary). Receipts sharing a
key are posted in the order they were queued."""
    root = _read_receipt(body)
    return () if root is None else _keys_of(root)


def _merge_group(root: etree._Element) -> str:
    """The root name when receipts of its kind can share a message with this one, else ``""``."""
    q = etree.QName(root)
    if q.namespace != CEB_NS or q.localname not in MERGEABLE or not len(root):
        return ""
    return q.localname if all(isinstance(node.tag, str) for node in root) else ""


def merge_receipts(bodies: Iterable[bytes]) -> bytes:
    """One receipt message carrying every return node of ``bodies`` (receipts of one type), unchanged and
    in order, under a fresh message guid."""
    roots = [_read_receipt(body) for body in bodies]
    if not roots or any(r is None for r in roots) or len({r.tag for r in roots}) != 1:  # type: ignore[union-attr]
        raise ValueError("only readable receipts of one type can be merged")
    first = roots[0]
    assert first is not None
    merged = etree.Element(first.tag, attrib=dict(first.attrib), nsmap=first.nsmap)
    merged.set("guid", new_guid())
    for root in roots:
        merged.extend(list(root))  # type: ignore[arg-type]
    return etree.tostring(merged, xml_declaration=True, encoding="UTF-8")


@dataclass(eq=False)
class _Outgoing:
    """A queued receipt and its place in the lanes of the keys it carries."""

    seq: int  # queue order: the oldest ready receipt goes first
    body: bytes
    keys: tuple[str, ...]
    group: str = ""  # receipts of one group may share a message (:func:`_merge_group`); "" goes alone
    nodes: int = 1  # return nodes it carries
    blockers: int = 0  # lanes in which an earlier receipt is still unsent


class ReceiptSender:
    """One regulator's receipts on their way to the window, at least once, however long it is away.

    It starts lazily on first use (:meth:`send_receipt`), so a stand-in works even when mounted inside
    another app whose lifespan never reaches it; :meth:`stop` shuts it down cleanly.

    Receipts go out through ``settings.senders`` concurrent senders. Ordering (the window keeps the
    *last* verdict it is given about a document — gateway/routing/verdicts.py checks versions, not
    the sequence 120 → 399 → 800 — so a 399 overtaking its 800 would leave the list concluded, not
    released): each receipt waits in one FIFO lane per key it carries (:func:`receipt_keys`: the
    documents it answers) and is posted only once every earlier receipt in those lanes has been
    taken or dropped. Receipts about different documents go in parallel and may arrive in any order.

    While the window fails (5xx, timeouts, refused connections), the failed receipts are retried one
    at a time, oldest first (waits from :func:`adapters.backoff.backoff` between ``settings.receipt_backoff``
    and ``settings.receipt_backoff_max``), and nothing new is posted until they are through: a sick window
    gets one probe rather than ``senders`` retry loops, and what was queued before the trouble arrives first.

    Merging (the window pays a transaction per post, not per return node): a sender that picks the
    oldest ready receipt takes along other ready receipts of the same message type (CEB312Message, …,
    CEB816Message) and posts them as one message under a fresh guid, their nodes unchanged, up to
    ``settings.merge`` nodes. It only takes what is ready then — nothing waits for company — and leaves
    the idle senders their share (ready ÷ idle senders, rounded up): while senders are free receipts go
    out side by side as before; once all are busy (the window is the bottleneck) a sender takes what
    has piled up. A merged message answered 2xx lets every receipt in it through its lanes; one the
    window refuses (409/422: it is taken or refused whole) is split, each receipt queued again on its
    own, so one bad node holds up no other. 5xx and network errors retry the same message (same guid:
    the window answers a repeat 200).
    """

    def __init__(self, name: str, settings: MockSettings, *,
                 shared: Callable[[], httpx.AsyncClient] | None = None) -> None:
        """``shared`` (tests, one transport for everything): the client every sender posts through,
        instead of a connection of its own."""
        self.name = name
        self.settings = settings
        self.log = logging.getLogger(f"swx.mock.{name}")
        self._shared = shared
        self._posters: dict[int, httpx.AsyncClient] = {}  # one per sender
        self._tls: ssl.SSLContext | None = None  # shared by the senders' clients (building one costs ~40 ms)
        self._senders: list[asyncio.Task] = []
        # Receipts at the head of all their lanes, oldest first, by merge group ("" for those that go alone).
        self._ready: dict[str, list[tuple[int, _Outgoing]]] | None = None
        self._ready_count = 0
        self._waiting: deque[asyncio.Future[None]] = deque()  # senders with nothing to do
        self._busy = 0  # senders posting
        self._lanes: dict[str, deque[_Outgoing]] = {}
        self._seq = itertools.count()
        self._pending = 0  # queued, not yet taken or dropped
        self._drained = asyncio.Event()
        self._drained.set()
        self._failing: set[int] = set()  # (oldest) seqs of messages the window failed, not through yet
        self._calm = asyncio.Event()  # pulsed whenever one of them gets through
        self.receipts = {"queued": 0, "sent": 0, "dropped": 0, "retries": 0}
        # Messages the window took, how many of them carried several receipts, merged ones it refused.
        self.messages = {"messages": 0, "merged": 0, "split": 0}

    def poster(self, sender: int) -> httpx.AsyncClient:
        """The client of one sender: a single kept-alive connection of its own. Reads never hold up a
        receipt waiting for the pool, and no post pays for the others' connections (httpcore's pool
        polls every connection it holds on each request: one shared pool of N costs O(N) per post)."""
        if self._shared is not None:
            return self._shared()
        client = self._posters.get(sender)
        if client is None:
            if self._tls is None:
                self._tls = httpx.create_ssl_context()
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE_EXPIRY)
            client = self._posters[sender] = httpx.AsyncClient(timeout=10.0, limits=limits, verify=self._tls)
        return client

    async def start(self) -> None:
        """Start the senders (idempotent; sending a receipt starts them too)."""
        if self._ready is None:
            self._ready = {}
        self._senders = [t for t in self._senders if not t.done()]
        loop = asyncio.get_running_loop()
        running = {t.get_name() for t in self._senders}
        for i in range(self.settings.senders):
            name = f"{self.name}-receipts-{i}"
            if name not in running:
                self._senders.append(loop.create_task(self._send_forever(i), name=name))

    async def send_receipt(self, xml: bytes | str, keys: Iterable[str] | None = None) -> None:
        """Queue one CEB receipt; it is posted until the window takes it, after every receipt queued
        before it about the same document. ``keys`` says what it is about (default: :func:`receipt_keys`);
        receipts about nothing that can be told go one after the other."""
        await self.start()
        assert self._ready is not None
        body = xml.encode("utf-8") if isinstance(xml, str) else xml
        root = _read_receipt(body)
        if keys is None:
            keys = () if root is None else _keys_of(root)
        group = "" if root is None else _merge_group(root)
        item = _Outgoing(next(self._seq), body, tuple(dict.fromkeys(keys)) or ("",), group, len(root) if group else 1)
        for key in item.keys:
            lane = self._lanes.get(key)
            if lane is None:
                self._lanes[key] = deque((item,))
            else:
                lane.append(item)
                item.blockers += 1
        self._pending += 1
        self._drained.clear()
        self.receipts["queued"] += 1
        if not item.blockers:
            self._make_ready(item)

    def _make_ready(self, item: _Outgoing) -> None:
        assert self._ready is not None
        heapq.heappush(self._ready.setdefault(item.group, []), (item.seq, item))
        self._ready_count += 1
        while self._waiting:  # one idle sender per receipt (one that finds it gone waits again)
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def _next(self) -> list[_Outgoing]:
        """Wait for a ready receipt, then take the oldest, with what may share its message."""
        while not self._ready_count:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
        return self._take()

    def _take(self) -> list[_Outgoing]:
        ready = self._ready
        assert ready is not None and self._ready_count
        group = min((g for g, heap in ready.items() if heap), key=lambda g: ready[g][0][0])
        heap = ready[group]
        batch = [heapq.heappop(heap)[1]]
        nodes = batch[0].nodes
        limit = min(self.settings.merge, MERGE_MAX)
        if group and heap and limit > 1:
            idle = max(1, self.settings.senders - self._busy)  # this one included
            share = -(-self._ready_count // idle)
            while heap and len(batch) < share and nodes + heap[0][1].nodes <= limit:
                batch.append(heapq.heappop(heap)[1])
                nodes += batch[-1].nodes
        if not heap:
            del ready[group]
        self._ready_count -= len(batch)
        return batch

    async def _send_forever(self, sender: int) -> None:
        client = self.poster(sender)
        while True:
            batch = await self._next()
            self._busy += 1
            through = batch
            try:
                through = await self._deliver(batch, client)
            except Exception:  # a bug, not the window: the lanes must not stay blocked behind it
                self.receipts["dropped"] += len(batch)
                self.log.exception("%d receipts could not be sent; dropped", len(batch))
            finally:
                self._busy -= 1
            self._settled(batch[0].seq)
            for item in through:  # not reached when cancelled: they count as undelivered at stop()
                self._release(item)

    def _settled(self, seq: int) -> None:
        """The message led by ``seq`` is taken, dropped or split: let the others post again if it was failing."""
        if seq in self._failing:
            self._failing.discard(seq)
            self._calm.set()
            self._calm = asyncio.Event()

    def _release(self, item: _Outgoing) -> None:
        """``item`` is through (taken or dropped): the next receipt in each of its lanes moves up."""
        for key in item.keys:
            lane = self._lanes[key]
            lane.popleft()
            if not lane:
                del self._lanes[key]
                continue
            following = lane[0]
            following.blockers -= 1
            if not following.blockers and self._ready is not None:
                self._make_ready(following)
        self._pending -= 1
        if not self._pending:
            self._drained.set()

    async def _my_turn(self, seq: int) -> None:
        """While the window is failing, only the oldest failed message may be posted."""
        while self._failing and seq != min(self._failing):
            await self._calm.wait()

    async def _deliver(self, batch: list[_Outgoing], client: httpx.AsyncClient) -> list[_Outgoing]:
        """POST until the window takes it (2xx) or refuses it for good (409 not ours, 422 unreadable).
        Returns the receipts that are through; a refused merged message is split, its receipts queued
        again to go alone, and none is through yet."""
        if len(batch) == 1:
            body = batch[0].body
        else:
            try:
                body = merge_receipts(item.body for item in batch)
            except (ValueError, etree.LxmlError):  # not expected: send_receipt read each of them
                self.log.exception("receipts could not be merged; sending each alone")
                return self._split(batch)
        s = self.settings
        url = s.window_url("/v1/regulators/receipts")
        headers = {**s.auth_headers(self.name), "Content-Type": "application/xml"}
        seq, attempt = batch[0].seq, 0
        while True:
            await self._my_turn(seq)
            try:
                r = await client.post(url, content=body, headers=headers)
                if r.is_success:
                    self.receipts["sent"] += len(batch)
                    self.messages["messages"] += 1
                    self.messages["merged"] += len(batch) > 1
                    return batch
                if r.status_code in (409, 422):
                    if len(batch) > 1:
                        self.messages["split"] += 1
                        self.log.info("the window refused a message of %d merged receipts (%s); sending each alone",
                                      len(batch), r.status_code)
                        return self._split(batch)
                    self.receipts["dropped"] += 1
                    self.log.warning("the window refused a receipt (%s): %s", r.status_code, r.text[:500])
                    return batch
                reason = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self._failing.add(seq)
            attempt += 1
            self.receipts["retries"] += 1
            if attempt == 1 or attempt % 10 == 0:
                self.log.warning("receipt message (%d receipts) not delivered (attempt %d, %s); retrying",
                                 len(batch), attempt, reason)
            await asyncio.sleep(backoff(min(attempt, _BACKOFF_ATTEMPTS), base=s.receipt_backoff,
                                        cap=s.receipt_backoff_max))

    def _split(self, batch: list[_Outgoing]) -> list[_Outgoing]:
        """Queue each receipt of ``batch`` again, to go alone (still at the head of its lanes)."""
        for item in batch:
            item.group = ""
            self._make_ready(item)
        return []

    async def idle(self) -> None:
        """Wait until every queued receipt has been taken or dropped (tests, drills)."""
        while self._pending:
            await self._drained.wait()

    def sender_state(self) -> dict[str, int]:
        """The counters, and what is waiting now (``GET /_admin/state``)."""
        return {**self.receipts, "pending": self._pending, "failing": len(self._failing),
                "senders": len([t for t in self._senders if not t.done()])}

    def message_state(self) -> dict[str, int]:
        """Receipt messages the window took, those of several receipts, merged ones split (``GET /_admin/state``)."""
        return dict(self.messages)

    async def stop(self) -> None:
        """Cancel the senders, forget what they had not sent (logged), close their connections. A later
        :meth:`send_receipt` (maybe on another event loop) starts afresh."""
        pending = [t for t in self._senders if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._pending:
            self.log.warning("%d receipts were not delivered before shutdown", self._pending)
        self._senders = []
        self._ready = None
        self._ready_count = self._busy = 0
        self._waiting.clear()
        self._lanes.clear()
        self._failing.clear()
        self._pending = 0
        self._drained.set()  # release anyone in idle(); fresh events for a later start (maybe another loop)
        self._calm.set()
        self._drained, self._calm = asyncio.Event(), asyncio.Event()
        self._drained.set()
        for client in self._posters.values():
            await client.aclose()
        self._posters.clear()
