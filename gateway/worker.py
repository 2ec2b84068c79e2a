"""``swx worker``: the dispatcher and the ledger sequencer, without serving HTTP.

Run as many as you like on PostgreSQL (claims use ``FOR UPDATE SKIP LOCKED``; the sequencer takes an
advisory lock). On SQLite several are safe too (write transactions begin IMMEDIATE) but take turns
at the one writer, so one is enough. It must share the serving process's delivery token: set
``SWX_DELIVERY_TOKEN`` or ``SWX_OPERATOR_TOKEN`` for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from adapters import adapter_names

from .audit.service import AuditLog
from .config import Settings
from .db import Database
from .routing.dispatcher import Dispatcher, DispatchSettings
from .routing.table import load_routes

log = logging.getLogger("swx.worker")


async def run_worker(settings: Settings) -> None:
    if not (settings.delivery_token or settings.operator_token):
        raise SystemExit("swx worker: set SWX_DELIVERY_TOKEN (or SWX_OPERATOR_TOKEN) to the serving process's")
    routes = load_routes(settings.routes, adapter_names())
    db = Database.open(settings)
    audit = AuditLog(settings)
    token = settings.effective_delivery_token(settings.operator_token or "")
    dispatcher = Dispatcher(db, routes, DispatchSettings.from_settings(settings, token))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await audit.start(db)
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
        await db.dispose()
