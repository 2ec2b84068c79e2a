"""The HTTP face of the stand-ins: one small app per regulator, and one app mounting all four.

Per regulator (docs/regulators.md): ``POST /messages`` (a DxpMsg or bare CEB message),
``POST /registrations`` (a registration view), ``GET|PUT /_admin/faults``, ``GET /_admin/state``,
``GET /_health``, plus whatever the regulator's own ``router()`` adds.

The framework, not the regulator, makes delivery at-least-once safe: a message guid already taken
is answered 200 without calling the regulator, and documents whose head guid was seen before are
dropped from what it is handed. The regulator is called *before* the answer, so a 2xx means the
documents are recorded; a failed call answers 500 and leaves them unseen, for the window's retry.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from kit.web import NO_OTEL
from mock_customs.base import Context, Regulator
from mock_customs.config import MockSettings
from mock_customs.documents import Delivered
from mock_customs.faults import FaultInjector, Faults, FaultsPatch
from mock_customs.inbound import Unreadable, read_message

# Where each regulator lives; the class is the module's Regulator subclass with that ``name``.
MODULES = {"customs": "mock_customs.customs", "inspection": "mock_customs.inspection",
           "tax": "mock_customs.tax", "fx": "mock_customs.fx"}

class TooLarge(Exception):
    pass


class Runtime:
    """One regulator with its context, faults and the dedupe memory the framework keeps for it."""

    def __init__(self, regulator_cls: type[Regulator], settings: MockSettings,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not regulator_cls.name:
            raise ValueError(f"{regulator_cls.__name__} has no name")
        self.ctx = Context(regulator_cls.name, settings, transport=transport)
        self.regulator = regulator_cls(self.ctx)
        self.faults = FaultInjector()
        self.seen_messages: set[str] = set()
        self.seen_docs: set[str] = set()
        # One delivery at a time: dedupe and recording stay atomic. Only decisions run under it (no
        # network: Regulator.prepare runs before it, receipts are queued, not sent, by on_message).
        self.lock = asyncio.Lock()
        # documents: distinct ones taken; duplicates: documents dropped as seen before; repeats:
        # deliveries of a message already taken (at-least-once delivery sending it again), dropped whole
        self.counts: dict = {"messages": 0, "documents": 0, "duplicates": 0, "repeats": 0, "registrations": 0,
                             "rejectedBodies": 0, "byType": {}}

    async def take(self, delivered: Delivered, message_guid: str, doc_count: int) -> dict[str, int]:
        if message_guid not in self.seen_messages:
            await self.regulator.prepare(delivered)  # network reads, concurrently with other deliveries
        async with self.lock:
            if message_guid in self.seen_messages:
                self.counts["duplicates"] += doc_count
                self.counts["repeats"] += 1
                return {"received": 0, "duplicates": doc_count}
            fresh, guids = [], set()
            for doc in delivered.docs:
                guid = doc.head["guid"]
                if guid not in self.seen_docs and guid not in guids:
                    fresh.append(doc)
                    guids.add(guid)
            delivered.docs = fresh
            if fresh:  # nothing new: the regulator already has every document
                await self.regulator.on_message(delivered)
            self.seen_messages.add(message_guid)
            self.seen_docs |= guids
            c = self.counts
            c["messages"] += 1
            c["documents"] += len(fresh)
            c["duplicates"] += doc_count - len(fresh)
            c["byType"][delivered.code] = c["byType"].get(delivered.code, 0) + 1
            return {"received": len(fresh), "duplicates": doc_count - len(fresh)}


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _routes(rt: Runtime) -> APIRouter:
    ctx, settings = rt.ctx, rt.ctx.settings
    deliveries = APIRouter(dependencies=[Depends(ctx.require_delivery)])
    admin = APIRouter(prefix="/_admin", dependencies=[Depends(ctx.require_operator)])

    @deliveries.post("/messages", summary="Take a delivered CEB message (DxpMsg or bare)")
    async def messages(
        request: Request,
        x_swx_delivery: Annotated[str, Header()] = "",
        x_swx_filer: Annotated[str, Header()] = "",
    ) -> JSONResponse:
        if (hit := await rt.faults.strike()) is not None:
            return _problem(*hit)
        try:
            body = await _read_body(request, settings.max_body_bytes)
            inbound = read_message(body, settings.max_body_bytes)
        except TooLarge:
            rt.counts["rejectedBodies"] += 1
            return _problem(413, f"the body is larger than {settings.max_body_bytes} bytes")
        except ClientDisconnect:  # the window gave up (timeout, or its dispatcher died): it will send again
            return _problem(499, "the sender went away before the body arrived")
        except Unreadable as exc:
            rt.counts["rejectedBodies"] += 1
            return _problem(400, f"unreadable message: {exc}")
        delivered = Delivered(x_swx_delivery, inbound.guid, inbound.mtype.code, x_swx_filer, inbound.raw, inbound.docs)
        try:
            answer = await rt.take(delivered, inbound.guid, len(inbound.docs))
        except Exception:
            ctx.log.exception("%s failed on message %s", ctx.name, inbound.guid)
            return _problem(500, f"{ctx.name} could not record the message; retry")
        return JSONResponse(answer)

    @deliveries.post("/registrations", summary="Take a registration view shared by the window")
    async def registrations(request: Request) -> JSONResponse:
        if (hit := await rt.faults.strike()) is not None:
            return _problem(*hit)
        try:
            view = json.loads(await _read_body(request, settings.max_body_bytes))
        except TooLarge:
            return _problem(413, f"the body is larger than {settings.max_body_bytes} bytes")
        except ClientDisconnect:
            return _problem(499, "the sender went away before the body arrived")
        except (ValueError, UnicodeDecodeError) as exc:
            return _problem(400, f"the body is not JSON: {exc}")
        if not isinstance(view, dict):
            return _problem(400, "a registration view is a JSON object")
        try:
            await rt.regulator.on_registration(view)
        except Exception:
            ctx.log.exception("%s failed on registration %s", ctx.name, view.get("code"))
            return _problem(500, f"{ctx.name} could not record the registration; retry")
        rt.counts["registrations"] += 1
        return JSONResponse({"received": 1})

    @admin.get("/faults", response_model=Faults, summary="Faults in force (operator)")
    async def get_faults() -> Faults:
        return rt.faults.faults

    @admin.put("/faults", response_model=Faults, summary="Set faults (operator); fields left out stay")
    async def put_faults(patch: FaultsPatch) -> Faults:
        faults = rt.faults.update(patch)
        ctx.log.warning("%s faults now %s", ctx.name, faults.model_dump())
        return faults

    @admin.get("/state", summary="What this regulator holds (operator)")
    async def get_state() -> dict:
        return {"received": rt.counts, "receipts": {**ctx.sender_state(), **ctx.message_state()},
                "faults": rt.faults.faults.model_dump(), **rt.regulator.state()}

    router = APIRouter()

    @router.get("/_health", summary="Liveness")
    async def health() -> dict:
        return {"regulator": ctx.name, "status": "ok"}

    router.include_router(deliveries)
    router.include_router(admin)
    return router


def create_regulator_app(regulator_cls: type[Regulator], settings: MockSettings | None = None, *,
                         transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """One regulator as an app. ``transport`` (tests) replaces the network to the window."""
    rt = Runtime(regulator_cls, settings or MockSettings(), transport)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await rt.ctx.start()
        try:
            yield
        finally:
            await rt.ctx.stop()

    app = FastAPI(**NO_OTEL, title=f"swx stand-in: {rt.ctx.name}", lifespan=lifespan)
    app.state.runtime = rt
    app.include_router(_routes(rt))
    extra = rt.regulator.router()
    if extra is not None:
        app.include_router(extra)
    return app


def regulator_class(name: str) -> type[Regulator]:
    module = importlib.import_module(MODULES[name])
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, Regulator) and obj is not Regulator and obj.name == name:
            return obj
    raise ImportError(f"{MODULES[name]} defines no Regulator subclass named {name!r}")


def create_app(settings: MockSettings | None = None) -> FastAPI:
    """All four stand-ins under ``/customs``, ``/inspection``, ``/tax`` and ``/fx``.

    Starlette does not run a mounted app's lifespan; this app's lifespan runs its four. An app that
    mounts this one should enter ``app.router.lifespan_context(app)`` in its own lifespan for a clean
    shutdown (without it the stand-ins still work: everything they run starts on first use).
    """
    settings = settings or MockSettings()
    subs = {name: create_regulator_app(regulator_class(name), settings) for name in MODULES}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for sub in subs.values():
                await stack.enter_async_context(sub.router.lifespan_context(sub))
            yield

    app = FastAPI(**NO_OTEL, title="swx regulator stand-ins", lifespan=lifespan)
    app.state.regulators = {name: sub.state.runtime for name, sub in subs.items()}
    for name, sub in subs.items():
        app.mount(f"/{name}", sub)
    return app
