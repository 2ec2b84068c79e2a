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
from .fill import fill_numbers
from .manifest import DeclarationItem, FileItem, Plan, load
from .records import DeclarationRecord, FileRecord, ReplayResult, final_states

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
        # every file that concerns a declaration is filed before its state is read (export: a 509 of a shipment)
        self.concerning: dict[str, int] = {k: 0 for k in plan.declarations}
        for f in plan.files:
            for k in {*f.concerns, *([f.group] if f.group in plan.declarations else [])}:
                if k in self.concerning:
                    self.concerning[k] += 1
        self.concerned = {k: asyncio.Event() for k in plan.declarations}
        for k, n in self.concerning.items():
            if n == 0:
                self.concerned[k].set()
        self.views: dict[str, dict[str, Any]] = {}  # declaration -> last view read for a wait
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
            held = False
            try:
                for item in files:
                    if item.wait or item.fill:  # export: customs must have answered first; no slot held meanwhile
                        if held:
                            self.slots.release()
                            held = False
                        body = await self.prepare(item)
                    else:
                        body = None
                    if not held:
                        await self.slots.acquire()
                        held = True
                    await self.file_one(item, body)
            finally:
                if held:
                    self.slots.release()
        finally:
            self.unfiled -= 1
            if self.unfiled == 0:
                self.filed_at = time.monotonic()
                self.all_filed.set()
        filed = time.monotonic()
        if decl is not None and group in self.polled:
            try:
                await self.concerned[group].wait()
                filed = max(filed, time.monotonic())
                if group not in self.needed:  # reading states while filing would slow the target we measure
                    await self.all_filed.wait()
                await self.poll(self.decls[group], filed)
            finally:
                self.final[group].set()
                self.progress.advance(self.decl_task)
        elif decl is not None:
            self.final[group].set()

    async def prepare(self, item: FileItem) -> bytes | None:
        """Wait (up to the replay's limit) until the declarations the file waits for reach its state, then
        put the target's invtNo in place of the set's stand-ins. The body to file, or None to read the file."""
        rec = self.files[id(item)]
        until = (item.wait or {}).get("until", "listed")
        names = list(dict.fromkeys([*(item.wait or {}).get("declarations", []), *(x["declaration"] for x in item.fill)]))
        deadline = time.monotonic() + self.limit
        late = []
        for name in names:
            wanted = until if name in (item.wait or {}).get("declarations", []) else "listed"
            if not await self.reached(name, wanted, deadline):
                late.append(f"{name} not {wanted}")
        if late:
            rec.message = f"filed although {', '.join(late)} within {self.limit:g} s"
        if not item.fill:
            return None
        numbers = {}
        for x in item.fill:
            view = self.views.get(x["declaration"]) or {}
            invt = ((view.get("documents") or {}).get("export_inventory") or {}).get("invtNo")
            if invt:
                numbers[x["placeholder"]] = invt
        try:
            return fill_numbers(item.path.read_bytes(), numbers)
        except OSError:
            return None  # file_one says so

    async def reached(self, name: str, until: str, deadline: float) -> bool:
        item = self.plan.declarations[name]
        path = _view_path(item)
        interval = POLL_FIRST
        while True:
            try:
                async with self.poll_slots:
                    r = await self.client.get(path, headers=self.operator)
                view = r.json() if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                view = None
            if isinstance(view, dict):
                self.views[name] = view
                if _reached(view, until):
                    return True
            now = time.monotonic()
            if now >= deadline:
                return False
            await asyncio.sleep(min(interval, deadline - now))
            interval = min(interval * 1.5, POLL_MAX)

    async def wait_after(self, key: str, after: str) -> None:
        # No timeout of its own: the earlier declaration's event is set by its own deadline, final or not.
        await self.final[after].wait()
        if not self.decls[after].final:
            self.decls[key].note = f"filed although {after} was not final within {self.limit:g} s of its filing"

    async def file_one(self, item: FileItem, body: bytes | None = None) -> None:
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
            body = body if body is not None else item.path.read_bytes()
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
            for k in {*item.concerns, *([item.group] if item.group in self.concerning else [])}:
                if k in self.concerning:
                    self.concerning[k] -= 1
                    if self.concerning[k] <= 0:
                        self.concerned[k].set()

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
        path = _view_path(rec.item)
        final = final_states(rec.item.kind)
        while True:
            await self.read(rec, path)
            now = time.monotonic()
            if rec.state in final:
                if self.wait_final is None or compare.matches_state(rec.item.expect, rec.state, rec.code, rec.extent):
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
        rec.final = rec.state in final
        rec.waited_s = time.monotonic() - started
        rec.final_at = time.monotonic() - self.t0

    async def read(self, rec: DeclarationRecord, path: str) -> None:
        rec.polls += 1
        try:
            async with self.poll_slots:
                r = await self.client.get(path, headers=self.operator)
            view = r.json() if r.status_code == 200 else None
            if isinstance(view, dict) and rec.item.kind == "summary":
                rec.state, info = view.get("state"), view.get("info")
                rec.reasons = [str(info)] if info else []
                rec.code = compare.leading_code(info) if rec.state == "rejected" else None
            elif isinstance(view, dict):
                rec.state, rec.reasons = view.get("state"), [str(x) for x in view.get("reasons") or []]
                rec.code = compare.reason_code(rec.reasons[0]) if rec.reasons else None
                rec.extent = (view.get("returned") or {}).get("extent")
            elif r.status_code != 404:  # 404: the target does not know it yet
                rec.note = f"HTTP {r.status_code} reading the declaration: {r.text[:200]}"
        except (httpx.HTTPError, ValueError) as exc:  # ValueError: a 200 that is not JSON
            rec.note = f"reading the declaration failed: {type(exc).__name__}: {exc}"


def _view_path(item: DeclarationItem) -> str:
    base = "/v1/summaries" if item.kind == "summary" else "/v1/declarations"
    return f"{base}/{senders.segment(item.ebp_code)}/{senders.segment(item.order_no)}"


def _reached(view: dict[str, Any], until: str) -> bool:
    """Whether the declaration view shows what a file waits for (replay.manifest.WAIT_STATES)."""
    state = view.get("state")
    if until == "listed":
        listing = (view.get("documents") or {}).get("export_inventory") or {}
        return bool(listing.get("invtNo")) or state in ("released", "departed", "returned")
    return state in {"released": ("released", "departed", "returned"), "departed": ("departed", "returned"),
                     "returned": ("returned",)}.get(until, ())


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
                 seed: int | None = None, register_senders: bool = False) -> ReplayResult:
    """Replay ``paths`` against ``target``; write the reports asked for and print the summary on ``console``.

    ``wait_final`` counts from a declaration's last filing and, for the comparison, from the end of all
    filing as well (whichever is later): a long run must not eat the time of the declarations filed
    first. ``seed`` drives --shuffle; one is drawn (and reported) when not given. ``register_senders``:
    register every enterprise the plain (manifest-less) files name, roles and names from their fields.

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
    if register_senders:
        plain = [f for f in plan.files if f.expect is None]
        known = {c for body in plan.enterprises for c in senders.codes_of(body)}
        bodies = senders.registrations_from(f.path.read_bytes() for f in plain)
        plan.enterprises.extend(b for b in bodies if b["code"] not in known)
        plan.notes.append(f"--register-senders: {len(bodies)} enterprise(s) named in {len(plain)} plain file(s)")
    options = {"paths": [str(p) for p in paths], "concurrency": concurrency, "rate": rate, "shuffle": shuffle,
               "seed": seed, "waitFinal": wait_final, "registerSenders": register_senders}
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
               seed: int | None = None, register_senders: bool = False) -> int:
    """``swx replay``: run :func:`replay` and give its exit status -- 1 on any mismatch or any file that
    could not be filed, 2 when the set cannot be read or the target does not answer, else 0."""
    from .manifest import ManifestError

    console = console or Console()
    try:
        result = asyncio.run(replay(paths, target=target, operator_token=operator_token, concurrency=concurrency,
                                    rate=rate, shuffle=shuffle, wait_final=wait_final, report=report, junit=junit,
                                    html=html, console=console, seed=seed, register_senders=register_senders))
    except (ManifestError, TargetUnreachable, ValueError) as exc:
        console.print(Text(f"replay: {exc}", style="red"))
        return 2
    return result.exit_code
