"""Sustained intake through HTTP: distinct single-order filings for a fixed time, then proof that every
acknowledged filing is stored and in the ledger.

    .venv/bin/python bench/load.py [--duration 60] [--concurrency 32] [--client wrk|python]
                                   [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/swx_bench]

Starts ``swx serve`` on a freshly reset bench database (as it runs by default: dispatcher in it, regulator
stand-ins its child process; or ``--workers N`` server processes and/or ``--external-regulators``: the stand-ins
as their own process, ``swx regulators serve``, which several workers require), registers a firm and
the enterprises its orders name, then:

1. warm-up and calibration: a few seconds of load, to size the body set;
2. pre-builds the bodies with ``schemas.builder.MessageBuilder`` (two processes), each a distinct
   message (its own guid and order number), written to a file the load generator reads once;
3. optionally a profiling phase (py-spy on the server) on bodies of its own;
4. the measured phase: ``wrk`` (a Lua script that cycles through the pre-built bodies, each sent
   once) or, without wrk, a lean asyncio client of raw HTTP/1.1 over keep-alive connections;
   CPU of the server (all its processes), of the stand-ins when out of process, of PostgreSQL and of
   the generator itself over the window;
5. checks: filings stored = 201 answers; every stored filing has its ``filing.accepted`` entry in the
   ledger; how long after the last answer the ledger had sequenced (and signed) everything.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    DEFAULT_PG,
    FIRM_CODE,
    FIRM_DXP,
    FIRM_NAME,
    Connection,
    CpuWindow,
    Server,
    add_server_args,
    cpu_line,
    log,
    percentile,
    pg_dsn,
    raw_request,
    register_firm,
)

from schemas.builder import MessageBuilder, Parties, Party

WRK_SCRIPT = Path(__file__).with_name("wrk_filings.lua")


# --- bodies ----------------------------------------------------------------------------------------


def bench_parties(seed: int = 7) -> Parties:
    return MessageBuilder(seed).parties()


def _write_orders(args: tuple[str, int, int, str, Parties, int]) -> tuple[str, int]:
    path, start, count, tag, parties, seed = args
    b = MessageBuilder(seed)
    firm = Party(FIRM_CODE, FIRM_NAME, FIRM_DXP)
    with open(path, "wb") as f:
        for i in range(start, start + count):
            body = b.message("311", [b.order(parties, lines=2, order_no=f"SO{tag}{i:012d}")], sender=firm)
            f.write(b"%d\n" % len(body))
            f.write(body)
    return path, count


def write_orders(path: str | Path, count: int, parties: Parties, tag: str, start: int = 0, procs: int = 2) -> Path:
    """``count`` distinct single-order CEB311 messages, as records ``<length>\\n<body>`` in ``path``.
    Order numbers are ``SO{tag}{i:012d}`` (unique per tag); guids come from each builder's seed."""
    path = Path(path)
    procs = max(1, min(procs, count // 500 or 1))
    share = -(-count // procs)
    jobs = []
    for w in range(procs):
        n = min(share, count - w * share)
        if n > 0:
            seed = int.from_bytes(hashlib.sha256(f"{tag}:{start}:{w}".encode()).digest()[:4], "big")
            jobs.append((f"{path}.{w}", start + w * share, n, tag, parties, seed))
    if len(jobs) == 1:
        parts = [_write_orders(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
            parts = pool.map(_write_orders, jobs)
    with open(path, "wb") as out:
        for part, _ in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
            os.unlink(part)
    return path


def read_bodies(path: str | Path) -> list[bytes]:
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        n = int(data[pos:nl])
        out.append(data[nl + 1 : nl + 1 + n])
        pos = nl + 1 + n
    return out


# --- load generators -------------------------------------------------------------------------------


def ensure_wrk(install: bool = True) -> str | None:
    """The wrk binary; installed from Debian when missing (and allowed); None if it cannot be had."""
    found = shutil.which("wrk")
    if found or not install:
        return found
    log("wrk not found: installing it from Debian (apt-get install -y wrk)")
    try:
        if os.geteuid() == 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300, check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired):
        pass
    return shutil.which("wrk")


def run_wrk(wrk: str, base: str, key: str, bodies: Path, duration: float, concurrency: int, threads: int = 1,
            path: str = "/v1/filings") -> dict:
    """One wrk run posting each body of ``bodies`` once to ``path``; returns its counts and latencies, and
    the CPU seconds wrk itself used (wait4)."""
    cmd = [wrk, f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", "30s",
           "-s", str(WRK_SCRIPT), base + path, "--", str(bodies), key, str(threads), path]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    m = re.search(r"^WRK_RESULT (\{.*\})$", text, re.MULTILINE)
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{text}")
    res = json.loads(m.group(1))
    statuses = {int(k): v for k, v in res["statuses"].items()}
    return {
        "client": f"wrk ({threads} thread, {concurrency} connections, Lua script)", "requests": res["requests"],
        "elapsed": res["duration_us"] / 1e6,
        "statuses": statuses,
        "replays": res["replays"],
        "exhausted": res["exhausted"] > 0,
        "errors": res["errors"],
        "p50_ms": res["p50_us"] / 1e3, "p95_ms": res["p95_us"] / 1e3, "p99_ms": res["p99_us"] / 1e3,
        "p999_ms": res["p999_us"] / 1e3, "max_ms": res["max_us"] / 1e3,
        "generator_cpu_s": usage.ru_utime + usage.ru_stime,
    }


async def _python_client(host: str, port: int, key: str, bodies: list[bytes], duration: float, concurrency: int,
                         path: str = "/v1/filings") -> dict:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/xml"}
    requests = iter([raw_request("POST", path, f"{host}:{port}", headers, b) for b in bodies])
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    exhausted = False
    stop_at = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal errors, exhausted
        conn = Connection(host, port)
        while time.perf_counter() < stop_at:
            req = next(requests, None)
            if req is None:
                exhausted = True
                break
            t = time.perf_counter()
            try:
                status, _ = await conn.call(req)
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                errors += 1
                continue
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1
        await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"elapsed": elapsed, "statuses": statuses, "replays": 0, "exhausted": exhausted, "errors": {"read": errors},
            "p50_ms": percentile(latencies, 50) * 1e3, "p95_ms": percentile(latencies, 95) * 1e3,
            "p99_ms": percentile(latencies, 99) * 1e3, "p999_ms": percentile(latencies, 99.9) * 1e3,
            "max_ms": (latencies[-1] if latencies else float("nan")) * 1e3}


def run_python(base: str, key: str, bodies_path: Path, duration: float, concurrency: int, path: str = "/v1/filings") -> dict:
    """The fallback generator, in this process (its CPU is this process's CPU over the run)."""
    host, port = base.split("//")[1].split(":")
    bodies = read_bodies(bodies_path)
    t0 = os.times()
    try:
        import uvloop  # the server's own event loop; a leaner client too

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    res = runner(_python_client(host, int(port), key, bodies, duration, concurrency, path))
    t1 = os.times()
    res["client"] = f"Python asyncio raw HTTP/1.1 ({concurrency} connections)"
    res["generator_cpu_s"] = (t1.user - t0.user) + (t1.system - t0.system)
    return res


def drive(client: str, wrk: str | None, base: str, key: str, bodies: Path, duration: float, concurrency: int,
          path: str = "/v1/filings") -> dict:
    if client == "wrk" and wrk:
        return run_wrk(wrk, base, key, bodies, duration, concurrency, path=path)
    return run_python(base, key, bodies, duration, concurrency, path)


# --- the database's side ---------------------------------------------------------------------------

FILING_ACCEPTED = '"kind":"filing.accepted"'


async def db_counts(url: str) -> dict:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        return {
            "messages": await conn.fetchval("SELECT count(*) FROM messages"),
            "pending": await conn.fetchval("SELECT count(*) FROM ledger_pending"),
            "ledger_size": await conn.fetchval("SELECT coalesce(max(size), 0) FROM ledger_checkpoints"),
            "outbox_pending": await conn.fetchval("SELECT count(*) FROM deliveries WHERE state = 'pending'"),
        }
    finally:
        await conn.close()


async def ledger_catch_up(url: str, timeout: float = 600) -> float:
    """Seconds until every ledger event queued so far is sequenced under a signed checkpoint."""
    import asyncpg

    t0 = time.perf_counter()
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        mark = await conn.fetchval("SELECT max(id) FROM ledger_pending")
        while mark is not None and time.perf_counter() - t0 < timeout:
            if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM ledger_pending WHERE id <= $1)", mark):
                break
            await asyncio.sleep(0.02)
        return time.perf_counter() - t0
    finally:
        await conn.close()


async def settle(url: str, quiet: float = 0.5, timeout: float = 30) -> int:
    """Wait until the count of stored messages stops moving (requests still in flight when the load
    generator stopped are finished by the server); returns the count."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        t0 = time.perf_counter()
        last, since = await conn.fetchval("SELECT count(*) FROM messages"), time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            await asyncio.sleep(0.1)
            now = await conn.fetchval("SELECT count(*) FROM messages")
            if now != last:
                last, since = now, time.perf_counter()
            elif time.perf_counter() - since >= quiet:
                break
        return last
    finally:
        await conn.close()


async def filings_in_ledger(url: str, since_idx: int = 0) -> int:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE idx >= $1 AND position(convert_to($2, 'UTF8') in entry) > 0",
            since_idx, FILING_ACCEPTED,
        )
    finally:
        await conn.close()


# --- profile -----------------------------------------------------------------------------------------


def start_profile(pid: int, seconds: int, out: Path, subprocesses: bool = False) -> subprocess.Popen | None:
    """py-spy on ``pid``; with ``subprocesses`` (``swx serve --workers N``) on it and every process it
    started (``py-spy record --subprocesses`` on uvicorn's master: all workers, in one profile)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists() and not shutil.which("py-spy"):
        log("py-spy not found (install: .venv/bin/pip install py-spy); no profile")
        return None
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(seconds), "--format", "raw",
                             "--nonblocking", "--rate", "100", "-o", str(out), *(["--subprocesses"] if subprocesses else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
# Leaf frames that mean "waiting, not running": the event loop in epoll (uvloop runs it from C, so the
# last Python frame is asyncio's Runner.run), idle worker threads, a thread waiting on a condition.
IDLE_LEAVES = {"Runner.run (asyncio/runners.py)", "_worker (concurrent/futures/thread.py)",
               "Condition.wait (threading.py)", "Event.wait (threading.py)", "wait (threading.py)",
               "select (selectors.py)", "BaseEventLoop.run_forever (asyncio/base_events.py)"}
# Frames that only start things (every sample of a thread has them): left out of the cumulative ranking.
BOILERPLATE = ("runpy", "<frozen runpy>", "typer", "click", "uvicorn/main.py", "uvicorn/server.py", "uvicorn/_compat.py",
               "asyncio/runners.py", "asyncio/base_events.py", "threading.py", "concurrent/futures/thread.py", "gateway/cli.py",
               "multiprocessing/", "uvicorn/_subprocess.py", "uvicorn/supervisors/", "<module> (<string>)")
# ``py-spy record --subprocesses`` puts one frame per process at the root of each stack: the master's,
# then the worker's (a worker's command line holds a ';', so they are taken off before splitting).
_PROCESS_FRAMES = re.compile(r'^((?:process \d+:"[^"]*"(?:;|$))*)(.*)$')
_PROCESS_PID = re.compile(r'process (\d+):"')
OWN = ("gateway", "ledger", "schemas", "mock_customs", "adapters")


def _module(path: str) -> str:
    """A frame's package as py-spy names files (paths relative to their sys.path entry):
    ``gateway/intake``, ``ledger/log``, ``sqlalchemy``, ``asyncpg``, ``asyncio`` ..."""
    parts = path.replace("\\", "/").split("/")
    if parts[0] in OWN and len(parts) > 1:
        return f"{parts[0]}/{parts[1].removesuffix('.py')}"
    if len(parts) == 1:
        return parts[0].removesuffix(".py")
    return parts[0]


def _key(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), frame.strip()
    return f"{m['fn']} ({m['file']})", _module(m["file"])


ACTIVITIES = (  # (label, test on the stack's frame names), first match wins
    ("validation (parse, XSD, rules; worker threads)", lambda names: any(n.startswith("check (gateway/intake/validate.py") for n in names)),
    ("regulator stand-ins (mock_customs, in-process)", lambda names: any("(mock_customs/" in n for n in names)),
    ("regulators' receipts coming back (POST /v1/regulators/receipts)", lambda names: any(n.startswith(("receipts (gateway/routing/endpoints.py", "ingest (gateway/routing/verdicts.py")) for n in names)),
    ("intake request (POST /v1/filings, validation excluded)", lambda names: any(n.startswith("file_message (gateway/intake/endpoints.py") for n in names)),
    ("dispatcher (deliveries to regulators)", lambda names: any(n.startswith("Dispatcher.") for n in names)),
    ("ledger sequencer", lambda names: any(n.startswith("Sequencer.") for n in names)),
    ("other endpoints", lambda names: any(n.startswith("run_endpoint_function (") for n in names)),
    ("SQLAlchemy / asyncpg in greenlets (caller not visible to py-spy)",
     lambda names: names[0].endswith(("(sqlalchemy)", "(asyncpg)")) or "(sqlalchemy/" in names[0] or "(asyncpg/" in names[0]),
    ("HTTP server, framework, event loop (outside endpoints)", lambda names: True),
)


def _activity(frames: list[str]) -> str:
    names = [_key(f)[0] for f in frames]
    for label, test in ACTIVITIES:
        if test(names):
            return label
    return "other"


def summarise_profile(path: Path, top: int = 25) -> dict:
    """py-spy raw output ('frame;frame;... count', outermost first) → shares of the *busy* samples
    (idle leaves dropped: see IDLE_LEAVES), by function (cumulative and self) and by package (self)."""
    stacks: list[tuple[list[str], int]] = []
    per_process: dict[str, int] = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            procs, stack = _PROCESS_FRAMES.match(stack).groups()
            if procs:
                pids = _PROCESS_PID.findall(procs)
                who = f"worker {pids[-1]}" if len(pids) > 1 else f"master {pids[0]}"
                per_process[who] = per_process.get(who, 0) + int(count)
            if stack:
                stacks.append((stack.split(";"), int(count)))
    total = sum(c for _, c in stacks) or 1
    busy_stacks = [(f, c) for f, c in stacks if _key(f[-1])[0] not in IDLE_LEAVES]
    busy = sum(c for _, c in busy_stacks) or 1
    cum: dict[str, int] = {}
    own: dict[str, int] = {}
    pkg_self: dict[str, int] = {}
    act: dict[str, int] = {}
    for frames, count in busy_stacks:
        label = _activity(frames)
        act[label] = act.get(label, 0) + count
        seen: set[str] = set()
        for fr in frames:
            name, _ = _key(fr)
            if name in seen or any(b in name for b in BOILERPLATE):
                continue
            seen.add(name)
            cum[name] = cum.get(name, 0) + count
        name, pkg = _key(frames[-1])
        own[name] = own.get(name, 0) + count
        pkg_self[pkg] = pkg_self.get(pkg, 0) + count

    def ranked(d: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, v / busy) for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": total, "busy_samples": busy, "activities": ranked(act), "cumulative": ranked(cum), "self": ranked(own),
            "packages_self": ranked(pkg_self), "processes": dict(sorted(per_process.items()))}


def print_profile(summary: dict, top: int = 20, file=sys.stdout) -> None:
    print(f"  profile: {summary['samples']:,} samples, {summary['busy_samples']:,} busy (shares below are of the busy ones)", file=file)
    if summary.get("processes"):
        print(f"  {summary.get('how', 'py-spy --subprocesses')}; samples by process: "
              + ", ".join(f"{k} {v:,}" for k, v in summary["processes"].items()), file=file)
    for title, key in (("by activity (stack markers)", "activities"), ("by package, self", "packages_self"),
                       ("by function, cumulative", "cumulative"), ("by function, self", "self")):
        print(f"  -- {title}", file=file)
        for name, share in summary.get(key, [])[:top]:
            print(f"    {share:6.1%}  {name}", file=file)


# --- the whole measurement --------------------------------------------------------------------------


def register_parties(server: Server, parties: Parties) -> None:
    for body in parties.registrations():
        if body["code"] != FIRM_CODE:
            server.register(body)


def sustained_intake(server: Server, key: str, parties: Parties, *, duration: float, concurrency: int, client: str,
                     tag: str, workdir: Path, profile_seconds: int = 0, warmup: float = 5.0, max_rate: float = 6000) -> dict:
    """Measure on a running server (see module doc); ``tag`` keeps order numbers distinct between runs."""
    url = server.url
    wrk = ensure_wrk() if client == "wrk" else None
    if client == "wrk" and not wrk:
        log("wrk unavailable: falling back to the Python client")
    used = "wrk" if wrk else "python"
    # 1. warm-up and calibration
    warm = min(int(max_rate * warmup), 20000)
    write_orders(workdir / "warm.bodies", warm, parties, tag + "W")
    res = drive(used, wrk, server.base, key, workdir / "warm.bodies", warmup, concurrency)
    ok = res["statuses"].get(201, 0) - res["replays"]
    rate = ok / res["elapsed"]
    log(f"warm-up: {ok} filings in {res['elapsed']:.1f}s = {rate:,.0f}/s, statuses {res['statuses']}")
    if ok == 0:
        raise RuntimeError(f"warm-up filed nothing: {res}")
    asyncio.run(settle(url))
    asyncio.run(ledger_catch_up(url))
    # 2. bodies, sized from the warm-up rate with room to spare
    need = int(min(max_rate, max(rate * 1.6, 200)) * duration) + 2000
    t = time.perf_counter()
    write_orders(workdir / "main.bodies", need, parties, tag + "M")
    log(f"built {need:,} distinct bodies in {time.perf_counter() - t:.1f}s")
    # 3. the measured window
    before = asyncio.run(db_counts(url))
    cpu = CpuWindow(server.pid, server.regulators_pid).begin()
    res = drive(used, wrk, server.base, key, workdir / "main.bodies", duration, concurrency)
    shares = cpu.end(res.get("generator_cpu_s"))
    t_end = time.perf_counter()
    catch_up = asyncio.run(ledger_catch_up(url))
    # 4-5. checks: requests in flight when wrk stopped are finished first (they were never answered to
    # the generator, so they may add stored filings beyond the 201s, at most one per connection)
    asyncio.run(settle(url))
    # a request that was in flight may still be stored after the quiet period of settle(), its ledger
    # event queued after the catch-up's mark: count again (briefly) until messages and entries agree
    deadline = time.perf_counter() + 30
    while True:
        asyncio.run(ledger_catch_up(url))
        after = asyncio.run(db_counts(url))
        in_ledger_total = asyncio.run(filings_in_ledger(url))
        if in_ledger_total == after["messages"] or time.perf_counter() > deadline:
            break
        time.sleep(0.5)
    accepted = res["statuses"].get(201, 0) - res["replays"]
    stored = after["messages"] - before["messages"]
    checkpoint = server.checkpoint_size()
    # 6. profile, after the window (so that every measured window follows the same steps), on bodies of its own
    profile = None
    if profile_seconds:
        pneed = int(min(max_rate, max(rate * 1.6, 200)) * (profile_seconds + 3)) + 1000
        write_orders(workdir / "profile.bodies", pneed, parties, tag + "P")
        several = server.workers > 1
        spy = start_profile(server.pid, profile_seconds, workdir / "profile.txt", subprocesses=several)
        if spy is not None:
            pres = drive(used, wrk, server.base, key, workdir / "profile.bodies", profile_seconds + 2, concurrency)
            spy.wait(60)
            if (workdir / "profile.txt").exists():
                profile = summarise_profile(workdir / "profile.txt")
                profile["rate_while_profiled"] = (pres["statuses"].get(201, 0) - pres["replays"]) / pres["elapsed"]
                profile["raw"] = str(workdir / "profile.txt")
                profile["how"] = (f"py-spy record --subprocesses on the master: all {server.workers} workers in one profile"
                                  if several else "py-spy record on the server process")
        asyncio.run(settle(url))
        asyncio.run(ledger_catch_up(url))
    out = {
        **res, "configuration": server.describe(), "workers": server.workers, "external_regulators": server.external,
        "accepted": accepted, "rate": accepted / res["elapsed"], "cpu": shares, "profile": profile,
        "stored": stored, "stored_ok": accepted <= stored <= accepted + concurrency,
        "unanswered_in_flight": stored - accepted,
        "messages_total": after["messages"], "filings_in_ledger": in_ledger_total,
        "ledger_ok": in_ledger_total == after["messages"] and after["ledger_size"] <= checkpoint,
        "ledger_catch_up_s": catch_up, "checkpoint_size": checkpoint, "outbox_pending": after["outbox_pending"],
        "measured_after": time.perf_counter() - t_end, "warmup_rate": rate,
    }
    log(f"intake ({server.describe()}): {accepted:,} in {res['elapsed']:.1f}s = {out['rate']:,.0f}/s; p50 {res['p50_ms']:.1f} ms, "
        f"p99 {res['p99_ms']:.1f} ms; stored {stored:,} ({'ok' if out['stored_ok'] else 'MISMATCH'} vs 201s); ledger "
        f"{'complete' if out['ledger_ok'] else 'INCOMPLETE'} {catch_up * 1000:.0f} ms after the last answer; {cpu_line(shares)}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=DEFAULT_PG)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--client", choices=("wrk", "python"), default="wrk")
    p.add_argument("--profile", type=int, default=0, help="seconds of py-spy profile before the measured window")
    p.add_argument("--no-dispatch", action="store_true", help="SWX_DISPATCH=false: deliveries wait in the outbox")
    add_server_args(p)
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="swx-load-"))
    env = {"SWX_DISPATCH": "false"} if args.no_dispatch else {}
    parties = bench_parties()
    with Server(args.database_url, env=env, workers=args.workers, external_regulators=args.external_regulators) as server:
        log(f"server: {server.describe()}")
        key = register_firm(server)
        register_parties(server, parties)
        res = sustained_intake(server, key, parties, duration=args.duration, concurrency=args.concurrency,
                               client=args.client, tag="L", workdir=workdir, profile_seconds=args.profile)
    if args.profile and res.get("profile"):
        print_profile(res["profile"])
    log(f"configuration: {res['configuration']}")
    print(json.dumps({k: v for k, v in res.items() if k != "profile"}, indent=1, default=str))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
