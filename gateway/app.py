"""The FastAPI application: wiring of settings, database, worker threads and routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.web import NO_OTEL

from . import __version__, problems
from .audit.endpoints import router as ledger_router
from .audit.service import AuditLog
from .auth import REGULATORS, KeyCache, Operator
from .config import Settings, get_settings
from .db import Database, Effect, Lock
from .enterprises.endpoints import router as enterprises_router
from .enterprises.service import issue_key
from .enterprises.sharing import load_policy
from .errors import Forbidden
from .intake.endpoints import router as intake_router
from .intake.service import IntakeService
from .intake.validate import thread_schemas
from .logs import configure as configure_logs
from .metrics import REGISTRY, REQUEST_SECONDS
from .registry.endpoints import router as registry_router
from .routing.dispatcher import Dispatcher, DispatchSettings
from .routing.endpoints import router as routing_router
from .routing.service import VerdictService
from .routing.table import load_routes
from .stats.endpoints import router as stats_router

log = structlog.get_logger("swx")

DESCRIPTION = """\
**swx** is a cross-border e-commerce single window. Firms file China Customs CEB messages
(CEB311 order, CEB411 payment, CEB511 waybill, CEB621 declaration list, …) once; swx validates
them against its XML schemas and the business rules, stores them and answers with a receipt.

Every call needs `Authorization: Bearer <key>`: the operator's token, or the API key an
enterprise received when the operator registered it.
"""


def operator_token(settings: Settings) -> str:
    """The configured operator token, or a fresh one printed once to the terminal that started swx."""
    if settings.operator_token:
        return settings.operator_token
    token = "swx_op_" + secrets.token_urlsafe(32)
    # Printed once, to the terminal that started the service, so the operator can register firms.
    print(f"swx: no SWX_OPERATOR_TOKEN set; this run's operator token is:\n  {token}", file=sys.stderr, flush=True)
    return token


async def issue_mock_keys(db: Database) -> dict[str, str]:
    """Fresh keys for the in-process stand-ins (older regulator keys are revoked: in a deployment that
    mounts the stand-ins, the stand-ins are the regulators)."""
    keys = {}
    async with db.write(lock=Lock.REGISTRY) as session:
        for name in REGULATORS:
            _, keys[name] = await issue_key(session, regulator=name, revoke_others=True)
    return keys


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if os.environ.get("SWX_LOG_CONFIGURE") == "1":  # set by `swx serve` for its worker processes
        configure_logs(settings.log_level, settings.log_json)
    from adapters import adapter_names

    routes = load_routes(settings.routes, adapter_names())  # a bad table stops start-up here
    policy = load_policy(settings.sharing_policy)  # so does a bad sharing policy
    mocks, mock_settings = None, None
    if settings.mounts_regulators:
        from mock_customs.app import create_app as create_mocks
        from mock_customs.config import MockSettings

        mock_settings = MockSettings(gateway_url=settings.base_url())
        mocks = create_mocks(mock_settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = Database.open(settings)
        executor = ThreadPoolExecutor(
            max_workers=settings.validation_threads, thread_name_prefix="swx-validate", initializer=thread_schemas
        )
        # Compile the schemas in every worker now, at start-up, rather than on the first filings: the
        # tasks meet at a barrier, so each runs on a thread of its own (a compile takes ~4 ms, and one
        # thread could otherwise take every task while the others were never started).
        everyone = threading.Barrier(settings.validation_threads)
        for f in [executor.submit(everyone.wait, 30) for _ in range(settings.validation_threads)]:
            f.result()
        app.state.settings = settings
        app.state.db = db
        app.state.operator_token = operator_token(settings)
        app.state.key_cache = key_cache = KeyCache(settings.auth_cache_seconds)
        db.on_commit(Effect.CREDENTIALS, key_cache.clear)  # keys, roles or a status may have changed
        app.state.audit = audit = AuditLog(settings)
        app.state.routes = routes
        token = settings.effective_delivery_token(app.state.operator_token)
        app.state.dispatcher = dispatcher = Dispatcher(db, routes, DispatchSettings.from_settings(settings, token))
        app.state.intake = intake = IntakeService(
            db, executor, settings.max_xml_depth, routes=routes, writers=settings.intake_writers, max_batch=settings.intake_batch,
        )
        app.state.verdicts = verdicts = VerdictService(
            db, executor, settings.max_xml_depth, writers=settings.receipt_writers, max_batch=settings.receipt_batch,
            routes=routes,
        )
        writers = (intake.writer, verdicts.writer)
        for writer in writers:
            writer.start()
        await audit.start(db)
        async with AsyncExitStack() as stack:
            if mocks is not None:
                mock_settings.keys.update(await issue_mock_keys(db))
                mock_settings.delivery_token, mock_settings.operator_token = token, app.state.operator_token
                await stack.enter_async_context(mocks.router.lifespan_context(mocks))
            task = asyncio.create_task(dispatcher.run_forever(), name="swx-dispatcher") if settings.dispatch else None
            log.info("swx started", version=__version__, database=db.engine.url.render_as_string(hide_password=True),
                     ledger_key=audit.ledger.verifier_key, dispatch=settings.dispatch, regulators=settings.regulators_base())
            try:
                yield
            finally:
                for writer in writers:
                    await writer.stop()
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await dispatcher.aclose()
        await audit.stop()
        executor.shutdown(wait=True)
        await db.dispose()

    app = FastAPI(
        **NO_OTEL,
        title="swx single window",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "filings", "description": "File CEB messages, check them, read back filings and receipts."},
            {"name": "enterprises", "description": "The registry (企业备案): registration by the operator, versioned changes "
             "by the enterprise itself (identity and roles wait for approval), lifecycle, keys and the access log."},
            {"name": "registry", "description": "What the regulators (customs, inspection, tax, fx) read: the shared "
             "registration views, the changes feed, and regulator keys."},
            {"name": "ledger", "description": "The audit ledger: signed checkpoints, entries, inclusion and consistency "
             "proofs anyone can check offline, and the trace (追溯) of one declaration."},
            {"name": "routing", "description": "Every accepted filing reaches each regulator that needs it: deliveries, "
             "pull inboxes, regulators' verdicts, and one declaration's state across all four (docs/regulators.md)."},
            {"name": "service", "description": "Health and metrics."},
        ],
    )
    problems.install(app)
    app.include_router(intake_router)
    app.include_router(enterprises_router)
    app.include_router(ledger_router)
    app.include_router(routing_router)
    app.include_router(stats_router)
    app.include_router(registry_router)
    app.state.sharing_policy = policy
    if mocks is not None:
        app.mount("/mock", mocks)

    app.add_middleware(RequestContext)

    @app.get("/healthz", tags=["service"], summary="Liveness and database reachability")
    async def healthz(request: Request) -> Response:
        db = request.app.state.db
        for name, engine in (("database", db.engine), ("replica", db.replica)):
            if engine is None:
                continue
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except Exception as exc:  # noqa: BLE001 - any failure means not healthy
                return JSONResponse({"status": "unhealthy", name: str(exc)}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics (operator token)", responses=problems.responses(Forbidden))
    async def metrics(caller: Operator) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app


class RequestContext:
    """Request id, timing metric and one log line per request.

    Plain ASGI rather than ``BaseHTTPMiddleware``, which runs every request in a task group of its own.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.prefix, self.served = uuid.uuid4().hex[:20], 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request_id = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        if request_id is None:
            self.served += 1
            request_id = f"{self.prefix}{self.served:012x}"  # 32 hex digits, unique; cheaper than a uuid4 each
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            path = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(scope["method"], path, str(status)).observe(elapsed)
            log.info("request", method=scope["method"], path=path, status=status, ms=round(elapsed * 1000, 2))
            structlog.contextvars.clear_contextvars()


logging.getLogger("aiosqlite").setLevel(logging.WARNING)
