"""File a sample set (or plain XML) against a running swx and compare what happens with the manifest.

Declarations are the unit of concurrency: ``concurrency`` of them are filed at once, each one's files
one after the other in ``seq`` order (a firm's correction must follow its refused original), with an
overall rate limit on files. A declaration with ``after`` waits -- without holding a slot -- until that
declaration is final, because customs must see one buyer's orders in order for the annual limit.

Latency is the time of the filing request alone: the HTTP pool is sized so that a filing never queues
behind another request of ours, polls for declaration states have slots of their own, and states are
read only once all filing is done (but for declarations that others wait for): reading them while
filing slowed the target's own routing measurably.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from . import compare, senders
from .manifest import FileItem, Plan, load
from .records import FINAL_STATES, DeclarationRecord, FileRecord, ReplayResult

AFTER_WAIT = 60.0  # how long a declaration waits for its `after` when --wait-final does not say
SETTLE = 3.0  # a final state that disagrees with the manifest must hold this long (released may still turn)
POLL_FIRST, POLL_MAX = 0.2, 1.0  # poll interval: first, and the most it backs off to
EXCERPT = 500  # characters of a response body kept per file


class TargetUnreachable(RuntimeError):
    """The target did not answer at all; nothing was filed."""


class TokenBucket:
    """At most ``rate`` files a second overall, bursts of at most ``burst``; ``None`` means no limit."""

    def __init__(self, rate: float | None, burst: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.rate, self.burst, self.clock = rate, max(1.0, burst), clock
        self.tokens = self.burst
        self.stamp = clock()
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        if self.rate is None:
            return
        async with self.lock:  # waiting inside the lock keeps the order of requests fair
            while True:
                now = self.clock()
                self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class _Run:
    """One replay in progress: the plan, the client, the records and the coordination between tasks."""

    def __init__(self, plan: Plan, client: httpx.AsyncClient, operator: dict[str, str], *, concurrency: int,
                 rate: float | None, shuffle: bool, seed: int, wait_final: float | None, progress: Progress) -> None:
        self.plan, self.client, self.operator = plan, client, operator
        self.slots = asyncio.Semaphore(concurrency)
        self.poll_slots = asyncio.Semaphore(max(2, concurrency // 2))
        self.bucket = TokenBucket(rate)
        self.shuffle, self.rng, self.wait_final = shuffle, random.Random(seed), wait_final
        self.progress = progress
        self.keys = senders.Keys()
        self.t0 = time.monotonic()
        self.first_sent: float | None = None
        self.last_answer: float | None = None
        self.files = {id(f): FileRecord(f) for f in plan.files}
        self.decls = {k: DeclarationRecord(d) for k, d in plan.declarations.items()}
        self.final = {k: asyncio.Event() for k in plan.declarations}
        self.needed = {d.after for d in plan.declarations.values() if d.after}  # others wait for these
        self.polled = set(plan.declarations) if wait_final is not None else self.needed
        self.limit = wait_final if wait_final is not None else AFTER_WAIT
        self.unfiled = 0  # groups still filing; set by groups()
        self.all_filed = asyncio.Event()
        self.filed_at = 0.0
        self.file_task = progress.add_task("files filed", total=len(plan.files))
        self.decl_task = progress.add_task("declarations final", total=len(self.polled), visible=bool(self.polled))

    def groups(self) -> list[tuple[str, list[FileItem]]]:
        """Files by group in order of each group's first file; declarations with no files get an empty group."""
        out: dict[str, list[FileItem]] = {}
        for f in self.plan.files:
            out.setdefault(f.group, []).append(f)
        for key in self.plan.declarations:
            out.setdefault(key, [])
        if self.shuffle:
            for files in out.values():
                self.rng.shuffle(files)
        self.unfiled = len(out)
        return list(out.items())

    async def run_group(self, group: str, files: list[FileItem]) -> None:
        decl = self.plan.declarations.get(group)
        try:
            if decl is not None and decl.after:
                await self.wait_after(group, decl.after)
            async with self.slots:
                for item in files:
                    await self.file_one(item)
        finally:
            self.unfiled -= 1
            if self.unfiled == 0:
                self.filed_at = time.monotonic()
                self.all_filed.set()
        filed = time.monotonic()
        if decl is not None and group in self.polled:
            try:
                if group not in self.needed:  # reading states while filing would slow the target we measure
                    await self.all_filed.wait()
                await self.poll(self.decls[group], filed)
            finally:
                self.final[group].set()
                self.progress.advance(self.decl_task)
        elif decl is not None:
            self.final[group].set()

    async def wait_after(self, key: str, after: str) -> None:
        # No timeout of its own: the earlier declaration's event is set by its own deadline, final or not.
        await self.final[after].wait()
        if not self.decls[after].final:
            self.decls[key].note = f"filed although {after} was not final within {self.limit:g} s of its filing"

    async def file_one(self, item: FileItem) -> None:
        rec = self.files[id(item)]
        try:
            if item.problem:
                rec.outcome, rec.message = "error", item.problem
                return
            key = self.keys.by_code.get(item.sender or "")
            if key is None:
                rec.outcome = "error"
                rec.message = self.keys.refused.get(item.sender or "", "sender not registered at the target")
                return
            body = item.path.read_bytes()
            await self.bucket.take()
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/xml", "Accept": "application/json"}
            rec.at = time.monotonic() - self.t0
            self.first_sent = self.first_sent if self.first_sent is not None else rec.at
            started = time.perf_counter()
            try:
                r = await self.client.post("/v1/filings", content=body, headers=headers)
            except httpx.HTTPError as exc:
                rec.outcome, rec.message = "error", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                _read_answer(rec, r)
            finally:
                rec.latency_ms = (time.perf_counter() - started) * 1000
                self.last_answer = time.monotonic() - self.t0
        except OSError as exc:  # the file went away or cannot be read
            rec.outcome, rec.message = "error", f"cannot read {item.path}: {exc}"
        finally:
            self.progress.advance(self.file_task)

    async def poll(self, rec: DeclarationRecord, started: float) -> None:
        """Read the declaration until it is final (and, when it disagrees with the manifest, stays so for
        SETTLE seconds) or its time is up; the last view is what the record keeps.

        Its time: ``limit`` seconds from its own last filing (``started``) -- then declarations filed
        ``after`` it go ahead -- and, with --wait-final, also ``limit`` seconds from the end of all
        filing: while a run is filing, the target's verdicts can lag far behind, and that is not the
        declaration's fault. Only declarations others wait for are read while filing goes on.
        """
        own_deadline = started + self.limit
        signalled = False
        settle_from: float | None = None
        interval = POLL_FIRST
        path = f"/v1/declarations/{senders.segment(rec.item.ebp_code)}/{senders.segment(rec.item.order_no)}"
        while True:
            await self.read(rec, path)
            now = time.monotonic()
            if rec.state in FINAL_STATES:
                if self.wait_final is None or compare.matches_state(rec.item.expect, rec.state, rec.code):
                    break
                settle_from = settle_from if settle_from is not None else now
                if now - settle_from >= SETTLE:
                    break
            else:
                settle_from = None
            if now >= own_deadline:
                if self.wait_final is None:
                    break
                if not signalled:  # whoever waits for this one goes ahead; we keep reading
                    signalled = True
                    self.final[rec.item.key].set()
                if self.all_filed.is_set() and now >= self.filed_at + self.limit:
                    break
                wake = self.filed_at + self.limit if self.all_filed.is_set() else now + POLL_MAX
            else:
                wake = own_deadline
            await asyncio.sleep(max(0.0, min(interval, wake - now)))
            interval = min(interval * 1.5, POLL_MAX)
        rec.final = rec.state in FINAL_STATES
        rec.waited_s = time.monotonic() - started
        rec.final_at = time.monotonic() - self.t0

    async def read(self, rec: DeclarationRecord, path: str) -> None:
        rec.polls += 1
        try:
            async with self.poll_slots:
                r = await self.client.get(path, headers=self.operator)
            view = r.json() if r.status_code == 200 else None
            if isinstance(view, dict):
                rec.state, rec.reasons = view.get("state"), [str(x) for x in view.get("reasons") or []]
                rec.code = compare.reason_code(rec.reasons[0]) if rec.reasons else None
            elif r.status_code != 404:  # 404: the target does not know it yet
                rec.note = f"HTTP {r.status_code} reading the declaration: {r.text[:200]}"
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: a 200 that is not JSON
            rec.note = f"reading the declaration failed: {type(exc).__name__}: {exc}"


def _read_answer(rec: FileRecord, r: httpx.Response) -> None:
    rec.status = r.status_code
    text = r.text
    rec.excerpt = text if len(text) <= EXCERPT else text[:EXCERPT] + "…"
    rec.replayed = r.headers.get("Idempotent-Replayed") == "true"
    try:
        body = r.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        rec.guid = body.get("guid") if isinstance(body.get("guid"), str) else None
    if r.status_code == 201:
        rec.outcome = "accepted"
        return
    if 400 <= r.status_code < 500:
        rec.outcome = "rejected"
        errors = body.get("errors") if isinstance(body, dict) else None
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else None
        if first:
            rec.layer, rec.code = _opt(first.get("layer")), _opt(first.get("code"))
            rec.message = _opt(first.get("message"))
        elif isinstance(body, dict):
            rec.message = _opt(body.get("detail") or body.get("title"))
        return
    rec.outcome = "error"  # 2xx other than 201, 3xx, 5xx: not an answer a filing can have
    detail = body.get("detail") or body.get("title") if isinstance(body, dict) else None
    rec.message = f"unexpected HTTP {r.status_code}" + (f": {detail}" if detail else "")


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


async def replay(paths: list[Path], *, target: str, operator_token: str, concurrency: int = 8, rate: float | None = None,
                 shuffle: bool = False, wait_final: float | None = None, report: Path | None = None,
                 junit: Path | None = None, html: Path | None = None, console: Console | None = None,
                 seed: int | None = None) -> ReplayResult:
    """Replay ``paths`` against ``target``; write the reports asked for and print the summary on ``console``.

    ``wait_final`` counts from a declaration's last filing and, for the comparison, from the end of all
    filing as well (whichever is later): a long run must not eat the time of the declarations filed
    first. ``seed`` drives --shuffle; one is drawn (and reported) when not given.

    Raises :class:`~replay.manifest.ManifestError` for a set that cannot be read and
    :class:`TargetUnreachable` when the target does not answer at all.
    """
    from . import html as html_report
    from . import report as reports
    from . import summary

    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if wait_final is not None and wait_final < 0:
        raise ValueError("wait_final must not be negative")
    console = console or Console()
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    plan = load([Path(p) for p in paths])
    options = {"paths": [str(p) for p in paths], "concurrency": concurrency, "rate": rate, "shuffle": shuffle,
               "seed": seed, "waitFinal": wait_final}
    result = ReplayResult(target=target, options=options, started_at=_now(), has_manifest=plan.has_manifest,
                          compared_declarations=wait_final is not None and bool(plan.declarations))
    result.notes.extend(plan.notes)
    operator = {"Authorization": f"Bearer {operator_token}"}
    polls = max(2, concurrency // 2)
    limits = httpx.Limits(max_connections=concurrency + polls + 2, max_keepalive_connections=concurrency + polls + 2)
    timeout = httpx.Timeout(60.0, connect=10.0, pool=None)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=target, limits=limits, timeout=timeout) as client:
        try:
            await client.get("/healthz")
        except httpx.HTTPError as exc:
            raise TargetUnreachable(f"{target} does not answer: {type(exc).__name__}: {exc}") from None
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=console, transient=False)
        with progress:
            run = _Run(plan, client, operator, concurrency=concurrency, rate=rate, shuffle=shuffle, seed=seed,
                       wait_final=wait_final, progress=progress)
            run.keys = await senders.obtain(client, operator, plan.enterprises, {f.sender for f in plan.files if f.sender},
                                            parallel=concurrency)
            result.registrations = run.keys.log
            async with asyncio.TaskGroup() as tasks:  # a bug in one task stops the others rather than orphaning them
                for group, files in run.groups():
                    tasks.create_task(run.run_group(group, files))
    result.duration_s = time.monotonic() - started
    result.finished_at = _now()
    if run.first_sent is not None and run.last_answer is not None:
        result.filing_s = run.last_answer - run.first_sent
    result.files = [run.files[id(f)] for f in plan.files]
    result.declarations = [run.decls[k] for k in plan.declarations]
    _judge(result, wait_final)
    stats = summary.summarise(result)
    summary.render(result, stats, console)
    if report:
        reports.write_json(result, stats, report)
    if junit:
        reports.write_junit(result, junit)
    if html:
        html_report.write_html(result, stats, html)
    return result


def _judge(result: ReplayResult, wait_final: float | None) -> None:
    for rec in result.files:
        if (m := compare.check_file(rec)) is not None:
            result.mismatches.append(m)
    if result.compared_declarations:
        assert wait_final is not None
        for d in result.declarations:
            if (m := compare.check_declaration(d, wait_final)) is not None:
                result.mismatches.append(m)
    elif result.declarations:
        result.notes.append("declarations were not compared: --wait-final was not given")
    if not result.has_manifest and result.files:
        result.notes.append("no manifest: outcomes only")
    replayed = sum(f.replayed for f in result.files)
    if replayed:
        result.notes.append(f"{replayed} file(s) were answered as idempotent replays: this set was filed at the target "
                            "before (generate another with a new --seed)")
    if result.errors:
        result.notes.append(f"{len(result.errors)} file(s) could not be filed")


def run_replay(paths: list[Path], *, target: str, operator_token: str, concurrency: int = 8, rate: float | None = None,
               shuffle: bool = False, wait_final: float | None = None, report: Path | None = None,
               junit: Path | None = None, html: Path | None = None, console: Console | None = None,
               seed: int | None = None) -> int:
    """``swx replay``: run :func:`replay` and give its exit status -- 1 on any mismatch or any file that
    could not be filed, 2 when the set cannot be read or the target does not answer, else 0."""
    from .manifest import ManifestError

    console = console or Console()
    try:
        result = asyncio.run(replay(paths, target=target, operator_token=operator_token, concurrency=concurrency,
                                    rate=rate, shuffle=shuffle, wait_final=wait_final, report=report, junit=junit,
                                    html=html, console=console, seed=seed))
    except (ManifestError, TargetUnreachable, ValueError) as exc:
        console.print(Text(f"replay: {exc}", style="red"))
        return 2
    return result.exit_code
