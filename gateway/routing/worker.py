"""``swx worker``: the dispatcher and the ledger sequencer, without serving HTTP.

Run as many as you like on PostgreSQL (claims use ``FOR UPDATE SKIP LOCKED``; the sequencer takes an
advisory lock); on SQLite, one. It must share the serving process's delivery token: set
``SWX_DELIVERY_TOKEN`` or ``SWX_OPERATOR_TOKEN`` for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from adapters import adapter_names

from ..audit.service import AuditLog
from ..config import Settings
from ..db import make_engine, make_sessionmaker
from .dispatcher import Dispatcher
from .table import load_routes

log = logging.getLogger("swx.worker")


async def run_worker(settings: Settings) -> None:
    from ..app import dispatch_settings

    if not (settings.delivery_token or settings.operator_token):
        raise SystemExit("swx worker: set SWX_DELIVERY_TOKEN (or SWX_OPERATOR_TOKEN) to the serving process's")
    routes = load_routes(settings.routes, adapter_names())
    engine = make_engine(settings)
    sessions = make_sessionmaker(engine)
    lock = asyncio.Lock() if settings.is_sqlite else contextlib.nullcontext()
    audit = AuditLog(settings)
    token = settings.effective_delivery_token(settings.operator_token or "")
    dispatcher = Dispatcher(sessions, routes, dispatch_settings(settings, token), write_lock=lock, on_commit=audit.committed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await audit.start(sessions, lock)
    task = asyncio.create_task(dispatcher.run_forever(), name="swx-dispatcher")
    log.info("swx worker started: dispatching to %s", ", ".join(sorted(dispatcher.adapters)) or "no push regulator")
    try:
        await stop.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await dispatcher.aclose()
        await audit.stop()
        await engine.dispose()
