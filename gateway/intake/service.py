"""Intake, orchestrated: check a message off the event loop, judge it against what is stored, store it.

Steps 1–3 (safe parse, envelope, schema, rules) run in worker threads (``validate.py``); step 4 (the
business keys against earlier filings, the registry's parties) and storage run in one write
transaction per batch of filings (``writer.py`` gathers them, ``repository.py`` writes them). A
filing is all or nothing: either every document of the message is stored with its version and state
and answered, or nothing is and the refusal is kept instead. The answer is sent only after the commit.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.xmlsafe import UnsafeXml

from ..auth import Principal
from ..db import Database
from ..routing.outbox import route_messages
from ..routing.table import RoutingTable
from . import answers, repository
from .answers import Filing, FilingResult
from .findings import ADDRESS_MISMATCH, Finding, schema_failed
from .keys import key_findings
from .parties import named_codes, party_findings, transmitter_findings
from .parts import ready_messages
from .validate import Checked, check
from .writer import FilingWriter

log = logging.getLogger("swx.intake")


class IntakeService:
    def __init__(
        self, db: Database, executor: Executor, max_depth: int, *, routes: RoutingTable | None = None,
        writers: int = 0, max_batch: int = 64,
    ) -> None:
        self.db = db
        self.executor = executor
        self.max_depth = max_depth
        self.routes = routes
        # Group commit; with no writer tasks (writers=0, or stopped) each filing commits alone.
        self.writer = FilingWriter(self.store, writers=writers, max_batch=max_batch)

    async def check(self, body: bytes, principal: Principal) -> Checked:
        """Steps 1–3 in a worker thread. Raises UnsafeXml for unreadable input."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, lambda: check(body, max_depth=self.max_depth, cop_code=principal.code, dxp_id=principal.dxp_id)
        )

    async def validate(self, body: bytes, principal: Principal) -> dict:
        """``/v1/validate``: steps 1–3 and the key checks, storing nothing."""
        checked = await self.check(body, principal)
        findings = list(checked.findings)
        if checked.mtype is not None:
            async with self.db.read() as session:
                registry = await repository.lookup(session, named_codes(checked.docs, principal.code))
                findings += party_findings(checked.docs, registry)
                findings += transmitter_findings(checked.docs, principal.code, registry)
                findings += key_findings(checked.docs, await repository.existing_documents(session, checked.docs), principal.code)
        return {"valid": not findings, "messageType": checked.message_type, "errors": [f.as_dict() for f in findings]}

    async def file(self, body: bytes, principal: Principal) -> FilingResult:
        try:
            checked = await self.check(body, principal)
        except UnsafeXml as exc:
            finding = Finding("xml", exc.code, exc.message, None, exc.line)
            result = answers.malformed(finding)
            await self._keep_refusal(principal, body, None, result, [finding])
            return result
        if checked.cop_code is not None and checked.cop_code != principal.code:
            finding = next(f for f in checked.findings if f.code == ADDRESS_MISMATCH and (f.path or "").endswith("copCode"))
            result = answers.foreign_sender(checked, finding)
            await self._keep_refusal(principal, checked.raw, checked, result, [finding])
            return result
        return await self.writer.file(checked, principal)

    async def store(self, filings: list[Filing]) -> list[FilingResult]:
        """Judge and store checked filings in one transaction, retrying a filing alone on a conflict.

        A conflict (a unique key another transaction stored between our read and our write) rolls the
        whole batch back; each of its filings then goes round again on its own and is answered from
        what is now stored.
        """
        try:
            return await self._store_batch(filings)
        except IntegrityError:
            if len(filings) > 1:
                log.info("intake batch conflict, filing one by one", extra={"filings": len(filings)})
            else:
                log.info("intake conflict, retrying", extra={"guid": filings[0][0].guid})
        results = []
        for filing in filings:
            for _attempt in range(3):
                try:
                    results += await self._store_batch([filing])
                    break
                except IntegrityError:
                    log.info("intake conflict, retrying", extra={"guid": filing[0].guid})
            else:
                raise RuntimeError("filing kept conflicting with concurrent filings")
        return results

    async def _store_batch(self, filings: list[Filing]) -> list[FilingResult]:
        async with self.db.write() as session:
            return await self._judge(session, filings)

    async def _judge(self, session: AsyncSession, filings: list[Filing]) -> list[FilingResult]:
        """Judge filings inside the batch's transaction, storing their results.

        The filings of one batch have distinct guids and document keys (``FilingWriter`` sees to
        that), so each is judged against what was stored before the batch, with one query per
        step for all of them.
        """
        priors = await repository.prior_messages(session, sorted({c.guid for c, _ in filings if c.guid}))
        readable = [
            d for c, _ in filings if c.guid not in priors and c.mtype is not None and not schema_failed(c.findings)
            for d in c.docs
        ]
        registered = await repository.lookup(session, named_codes(readable) | {p.code for _, p in filings if p.code})
        stored = await repository.existing_documents(session, readable, lock=True)
        results: list[FilingResult | None] = [None] * len(filings)
        accepted: list[int] = []
        for i, (checked, principal) in enumerate(filings):
            prior = priors.get(checked.guid) if checked.guid else None
            if prior is not None:
                results[i] = answers.replayed(prior, checked)
                continue
            findings = list(checked.findings)
            if checked.mtype is not None and not schema_failed(findings):
                findings += party_findings(checked.docs, registered)
                findings += transmitter_findings(checked.docs, principal.code, registered)
                findings += key_findings(checked.docs, stored, principal.code)
            if findings:
                results[i] = answers.rejected(checked, findings)
                await repository.store_rejection(session, principal, checked.raw, checked, results[i], findings)
            else:
                accepted.append(i)
        stored_filings = await repository.store_filings(session, [filings[i] for i in accepted], stored)
        for i, (result, _) in zip(accepted, stored_filings):
            results[i] = result
        if self.routes is not None:
            ready = await ready_messages(session, [
                (filings[i][0].docs, message) for i, (_, message) in zip(accepted, stored_filings)
            ])
            await route_messages(session, self.routes, ready)
        return results  # type: ignore[return-value]

    async def _keep_refusal(
        self, principal: Principal, raw: bytes, checked: Checked | None, result: FilingResult, findings: list[Finding]
    ) -> None:
        async with self.db.write() as session:
            await repository.store_rejection(session, principal, raw, checked, result, findings)
