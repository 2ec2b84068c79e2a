"""Whole declarations at a target rate: from the first filing to ``released``, and the server's memory.

    .venv/bin/python bench/pipeline.py [--rate 300] [--duration 30] [--database-url ...]

Starts ``swx serve`` (regulator stand-ins as their own process, ``SWX_MOCK_MATCH_WAIT=60`` so that lateness is
not read as refusal) on a freshly reset bench database and registers one cast of firms (platform,
seller, payment firm, logistics firm, agent, ...), each with its own key. Every declaration is an
order (filed by the platform), a payment (payment firm), a waybill (logistics firm) and a signed
declaration list (agent), built by ``MessageBuilder.declaration`` from goods that inspection clears
(a clean declaration: no hold, no refusal).

The load is open-loop: declaration *i* starts at ``t0 + i / rate`` whatever happened before, and its
four filings go out at once over a pool of keep-alive connections (raw HTTP/1.1, asyncio). Latency
is measured from the scheduled start (so a server that falls behind is charged for the queue), to
the moment customs' release (800) of the list was stored (``receipts.created_at``, the server's
clock, this machine's). A sample of the declarations is also polled through
``GET /v1/declarations/{ebpCode}/{orderNo}`` (sparingly: the view costs the server) until it says
``released``, as a cross-check. The server's RSS is sampled throughout: with ``--workers N`` the
figure is the largest single worker process (the target is the memory of one server process), and the
sum over all the server's processes (master, workers, resource tracker) is given beside it.

``--workers N`` (N > 1) or ``--external-regulators`` runs the stand-ins as their own process
(``swx regulators serve``; their CPU and RSS reported apart) and the server with
``SWX_MOCK_REGULATORS=false`` and a routing table pointing at them.

``measure`` (this command): if the server cannot keep up with the target (its answers fall behind
the schedule), a second phase runs at a rate it did sustain, and both are reported.
``measure_rates`` (bench/run's ``declarations`` row, issue 13): one phase per rate given (100/s,
the must, then 300/s, the aim), each on a fresh database and server, sustained or not.

Each phase also gives the CPU per released declaration: the server's (all its processes; the
stand-ins apart when they run as their own process), the stand-ins' and PostgreSQL's, from the start
of the load until the wait for releases ends (everything released, nothing moving for 10 s, or 60 s
after the load), divided by the declarations released. A phase that is not sustained charges the
released ones with the work done for those not released (filed in part, or released later): the
figure is a fair one only for a sustained phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    DEFAULT_PG,
    ROOT,
    TOKEN,
    Connection,
    CpuWindow,
    Server,
    add_server_args,
    cpu_line,
    log,
    percentile,
    pg_dsn,
    proc_status,
    proc_tree,
    raw_request,
)

import schemas.builder as builder_module
from schemas.builder import MessageBuilder, Parties

MESSAGES = (("311", "order"), ("411", "payment"), ("511", "waybill"), ("621", "inventory"))


def clean_products() -> tuple:
    """The builder's goods that the inspection stand-in clears (no prohibited or restricted hit)."""
    table = tomllib.loads((ROOT / "mock_customs" / "tables" / "inspection.toml").read_text())
    prefixes, keywords = [], []
    for kind in ("prohibited", "restricted"):
        for e in table.get(kind, []):
            prefixes += [p.replace(".", "") for p in e.get("prefixes", [])]
            keywords += [k.lower() for k in e.get("keywords", [])]
    return tuple(p for p in builder_module.PRODUCTS
                 if not any(p.gcode.startswith(x) for x in prefixes) and not any(k in p.name.lower() for k in keywords))


def _build(args: tuple[int, int, int, Parties]) -> list[tuple[str, list[tuple[str, bytes]]]]:
    start, count, seed, parties = args
    builder_module.PRODUCTS = clean_products()  # this worker process only: clean goods
    b = MessageBuilder(seed)
    out = []
    for i in range(start, start + count):
        d = b.declaration(parties, order_no=f"SD{seed % 1000:03d}{i:011d}")
        msgs = [(code, b.message(code, [d[kind]], sender=parties.sender_for(code))) for code, kind in MESSAGES]
        out.append((d["order"].head["orderNo"], msgs))
    return out


def build_declarations(n: int, parties: Parties, seed: int = 21, procs: int = 2) -> list[tuple[str, list[tuple[str, bytes]]]]:
    share = -(-n // procs)
    jobs = [(w * share, min(share, n - w * share), seed + w, parties) for w in range(procs) if n - w * share > 0]
    with multiprocessing.get_context("fork").Pool(len(jobs)) as pool:
        parts = pool.map(_build, jobs)
    return [d for part in parts for d in part]


@dataclass
class Decl:
    order_no: str
    start: float  # scheduled start, wall clock (time.time())
    requests: list[bytes]
    statuses: list[int] = field(default_factory=list)
    answered: float | None = None  # when the last of its four answers came back
    polled_release: float | None = None


class Pool:
    def __init__(self, host: str, port: int, size: int) -> None:
        self.free: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(Connection(host, port))

    async def call(self, request: bytes) -> tuple[int, bytes]:
        conn = await self.free.get()
        try:
            for attempt in range(3):
                try:
                    return await conn.call(request)
                except (ConnectionError, asyncio.IncompleteReadError, OSError):
                    if attempt == 2:
                        raise
            raise AssertionError
        finally:
            self.free.put_nowait(conn)


async def _phase(server: Server, decls: list[Decl], rate: float, connections: int, poll_every: int, ebp: str,
                 grace: float) -> dict:
    """Offer the declarations on schedule; filings still unanswered ``grace`` s after the schedule ends
    are abandoned (their declarations count as not filed)."""
    host, port = "127.0.0.1", server.port
    pool = Pool(host, port, connections)
    poll_pool = Pool(host, port, 4)
    polled: list[Decl] = []
    polls: list[asyncio.Task] = []
    tasks: list[asyncio.Task] = []
    behind = 0.0

    async def poll(d: Decl) -> None:
        req = raw_request("GET", f"/v1/declarations/{ebp}/{d.order_no}", f"{host}:{port}", {"Authorization": f"Bearer {TOKEN}"})
        await asyncio.sleep(0.3)
        while True:
            status, body = await poll_pool.call(req)
            if status == 200:
                state = json.loads(body).get("state")
                if state == "released":
                    d.polled_release = time.time()
                    return
                if state in ("rejected", "cancelled", "review"):
                    return
            await asyncio.sleep(0.25)

    async def one(d: Decl, i: int) -> None:
        results = await asyncio.gather(*(pool.call(r) for r in d.requests), return_exceptions=True)
        d.statuses = [r[0] if isinstance(r, tuple) else 0 for r in results]
        d.answered = time.time()
        if poll_every and i % poll_every == 0 and all(st == 201 for st in d.statuses):
            polled.append(d)
            polls.append(asyncio.create_task(poll(d)))

    t0 = time.time() + 0.2
    for i, d in enumerate(decls):
        d.start = t0 + i / rate
        delay = d.start - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            behind = max(behind, -delay)
        tasks.append(asyncio.create_task(one(d, i)))
    _, late = await asyncio.wait(tasks, timeout=grace)
    for t in late:
        t.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    return {"t0": t0, "scheduler_behind_s": behind, "polled": polled, "polls": polls, "abandoned": len(late)}


async def released_times(url: str, ebp: str, order_nos: list[str]) -> dict[str, float]:
    """When customs' release (800) of each declaration's list was stored, as epoch seconds."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT d.order_ref, min(r.created_at) AS at FROM documents d JOIN receipts r ON r.document_id = d.id "
            "WHERE d.kind = 'inventory' AND d.order_ref = ANY($1::text[]) AND r.regulator = 'customs' "
            "AND r.return_status = '800' GROUP BY d.order_ref", [f"{ebp}|{o}" for o in order_nos])
        return {r["order_ref"].split("|", 1)[1]: r["at"].timestamp() for r in rows}
    finally:
        await conn.close()


async def refused(url: str, ebp: str, order_nos: list[str]) -> int:
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        return await conn.fetchval(
            "SELECT count(DISTINCT d.order_ref) FROM documents d JOIN verdicts v ON v.document_id = d.id "
            "WHERE d.order_ref = ANY($1::text[]) AND (v.status = '100' OR v.status LIKE '-%')", [f"{ebp}|{o}" for o in order_nos])
    finally:
        await conn.close()


class RssSampler(threading.Thread):
    """Samples the server's RSS: the largest single worker process (``max``), the sum over the server's
    whole process tree (``sum_max``), and the stand-ins' process when they run apart (``regulators_max``)."""

    def __init__(self, server: Server, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.server, self.every, self.samples = server, every, 0
        self.max = self.sum_max = self.regulators_max = 0
        self.processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.max = max([self.max, *(proc_status(p, "VmRSS") for p in self.server.worker_pids())])
            tree = proc_tree(self.server.pid)
            self.processes = max(self.processes, len(tree))
            self.sum_max = max(self.sum_max, sum(proc_status(p, "VmRSS") for p in tree))
            if self.server.regulators_pid is not None:
                self.regulators_max = max(self.regulators_max, proc_status(self.server.regulators_pid, "VmRSS"))
            self.samples += 1
            self._halt.wait(self.every)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.max


def worker_hwm(server: Server) -> int:
    """The largest VmHWM (peak RSS) of the server's worker processes (the server process when one)."""
    return max(proc_status(p, "VmHWM") for p in server.worker_pids())


def run_phase(server: Server, built: list, rate: float, *, connections: int, poll_every: int, ebp: str,
              keys: dict[str, str], senders: dict[str, str], grace: float = 10, settle: float = 60, quiet: float = 10) -> dict:
    host = f"127.0.0.1:{server.port}"
    decls = []
    for order_no, msgs in built:
        reqs = [raw_request("POST", "/v1/filings", host, {"Authorization": f"Bearer {keys[senders[code]]}",
                                                          "Content-Type": "application/xml"}, body) for code, body in msgs]
        decls.append(Decl(order_no, 0.0, reqs))
    rss = RssSampler(server)
    rss.start()
    cpu = CpuWindow(server.pid, server.regulators_pid).begin()
    cpu_all = CpuWindow(server.pid, server.regulators_pid).begin()  # the load and the wait for its releases
    try:
        import uvloop

        new_loop = uvloop.new_event_loop
    except ImportError:
        new_loop = asyncio.new_event_loop
    loop = new_loop()
    asyncio.set_event_loop(loop)
    try:
        res = loop.run_until_complete(_phase(server, decls, rate, connections, poll_every, ebp, grace))
        shares = cpu.end()
        t_load_end = time.time()
        order_nos = [d.order_no for d in decls]
        ok = [d for d in decls if len(d.statuses) == 4 and all(st == 201 for st in d.statuses)]
        # wait for the stand-ins to finish what was filed: all released, or nothing moves for ``quiet`` s,
        # or ``settle`` s in all (the sampled polls go on meanwhile)
        released: dict[str, float] = {}
        last_change, last_n = time.time(), -1
        while time.time() - t_load_end < settle:
            released = loop.run_until_complete(released_times(server.url, ebp, order_nos))
            if len(released) >= len(ok):
                break
            if len(released) != last_n:
                last_n, last_change = len(released), time.time()
            elif time.time() - last_change > quiet:
                break
            loop.run_until_complete(asyncio.sleep(0.5))
        shares_all = cpu_all.end()
        loop.run_until_complete(asyncio.sleep(0.5))
        for t in res["polls"]:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*res["polls"], return_exceptions=True))
        n_refused = loop.run_until_complete(refused(server.url, ebp, order_nos))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    peak = rss.stop()
    hwm = worker_hwm(server)
    lat = [released[d.order_no] - d.start if d.order_no in released else math.inf for d in ok]
    lat += [math.inf] * (len(decls) - len(ok))  # not filed in time: never released within the window
    lat.sort()
    answered = max((d.answered for d in decls if d.answered), default=t_load_end)
    duration = len(decls) / rate
    filed_rate = len(ok) / max(1e-9, answered - res["t0"])
    done = [t for t in released.values()]
    release_span = (max(done) - res["t0"]) if done else math.nan
    polled = sorted(d.polled_release - d.start for d in res["polled"] if d.polled_release)
    out = {
        "target_rate": rate, "declarations": len(decls), "filed_ok": len(ok), "abandoned": res["abandoned"], "duration_s": duration,
        "filing_statuses": _count(st for d in decls for st in d.statuses),
        "filed_rate": filed_rate, "answers_behind_s": max(0.0, answered - (res["t0"] + duration)),
        "released": len(released), "refused": n_refused, "released_rate": len(released) / release_span if done else 0.0,
        "p50_s": percentile(lat, 50), "p95_s": percentile(lat, 95), "p99_s": percentile(lat, 99),
        "max_s": lat[-1] if lat else math.nan, "settled_after_s": time.time() - t_load_end,
        "polled": len(res["polled"]), "polled_released": len(polled), "polled_p50_s": percentile(polled, 50),
        "polled_p95_s": percentile(polled, 95), "rss_max_mib": peak / 2**20, "rss_hwm_mib": hwm / 2**20,
        "rss_sum_max_mib": rss.sum_max / 2**20, "server_processes": rss.processes, "workers": server.workers,
        "external_regulators": server.external, "configuration": server.describe(),
        **({"regulators_rss_max_mib": rss.regulators_max / 2**20} if server.external else {}),
        "rss_samples": rss.samples, "cpu": shares, "scheduler_behind_s": res["scheduler_behind_s"],
        "cpu_with_settle": shares_all, **per_released(shares_all, len(released)),
    }
    # kept up: answers on schedule, (nearly) everything released, latency not growing through the
    # phase (a growing queue shows as later declarations waiting longer than earlier ones), and the
    # releases as a whole came at ≥ 80 % of the offered rate (first start to last release)
    by_start = [released[d.order_no] - d.start if d.order_no in released else math.inf for d in decls]
    fifth = max(1, len(by_start) // 5)
    early, late = sorted(by_start[:fifth]), sorted(by_start[-fifth:])
    out["early_p50_s"], out["late_p50_s"] = percentile(early, 50), percentile(late, 50)
    out["sustained"] = (out["answers_behind_s"] < 1.0 and len(released) >= 0.99 * len(decls)
                        and out["late_p50_s"] <= out["early_p50_s"] + 1.0 and out["released_rate"] >= 0.8 * rate)
    log(f"declarations at {rate:g}/s for {duration:.0f}s: {len(ok):,}/{len(decls):,} filed ok "
        f"({filed_rate:,.0f} decl/s, answers {out['answers_behind_s']:.1f}s behind schedule, {res['abandoned']} abandoned), "
        f"{len(released):,} released ({out['released_rate']:.1f}/s), {n_refused} refused; first filing → released p50 "
        f"{out['p50_s']:.2f}s p95 {out['p95_s']:.2f}s (polled sample {len(polled)}: p95 {out['polled_p95_s']:.2f}s); "
        f"{rss_text(out)}; {cpu_line(shares)}")
    return out


def per_released(cpu: dict, released: int) -> dict:
    """CPU per released declaration (ms) over the load and the wait for its releases: the server's
    processes (the stand-ins apart), the stand-ins when apart, PostgreSQL."""
    n = max(1, released)
    out = {"server_ms_per_released": 1000 * cpu["server_cpu_s"] / n if released else math.nan,
           "postgres_ms_per_released": 1000 * cpu["postgres_cpu_s"] / n if released else math.nan}
    if "regulators_cpu_s" in cpu:
        out["regulators_ms_per_released"] = 1000 * cpu["regulators_cpu_s"] / n if released else math.nan
    return out


def rss_text(ph: dict) -> str:
    """The server's memory as a phase measured it, in words."""
    if ph.get("workers", 1) > 1:
        text = (f"server RSS max {ph['rss_max_mib']:.0f} MiB (largest of {ph['workers']} worker processes; all "
                f"{ph.get('server_processes', '?')} processes {ph['rss_sum_max_mib']:.0f} MiB)")
    else:
        text = f"server RSS max {ph['rss_max_mib']:.0f} MiB"
    if "regulators_rss_max_mib" in ph:
        text += f", stand-ins {ph['regulators_rss_max_mib']:.0f} MiB"
    return text


def _count(values) -> dict:
    out: dict[int, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def start_server(url: str, match_wait: float = 60, *, workers: int = 1,
                 external_regulators: bool = False) -> tuple[Server, Parties, dict[str, str], dict[str, str]]:
    parties = MessageBuilder(17).parties()
    server = Server(url, env={"SWX_MOCK_MATCH_WAIT": str(match_wait)}, workers=workers,
                    external_regulators=external_regulators).start()
    log(f"server: {server.describe()}")
    keys = {body["code"]: server.register(body) for body in parties.registrations()}
    senders = {code: parties.sender_for(code).code for code, _ in MESSAGES}
    return server, parties, keys, senders


def fresh_phase(url: str, rate: float, span: float, seed: int, out: dict, *, connections: int, poll_every: int,
                workers: int, external_regulators: bool) -> dict:
    """One phase at ``rate`` for ``span`` s on a fresh database and server, after a warm-up of a few
    declarations (so first-use costs -- schema caches, connections -- are not measured)."""
    server, parties, keys, senders = start_server(url, workers=workers, external_regulators=external_regulators)
    out["configuration"] = server.describe()
    try:
        warm = build_declarations(20, parties, seed=900 + seed, procs=1)
        run_phase(server, warm, 10, connections=connections, poll_every=0, ebp=parties.ebp.code, keys=keys,
                  senders=senders, settle=20)
        n = max(10, int(rate * span))
        t = time.perf_counter()
        built = build_declarations(n, parties, seed=seed)
        log(f"built {n:,} declarations ({4 * n:,} messages) in {time.perf_counter() - t:.0f}s")
        phase = run_phase(server, built, rate, connections=connections, poll_every=poll_every, ebp=parties.ebp.code,
                          keys=keys, senders=senders)
        phase["rss_hwm_mib"] = worker_hwm(server) / 2**20
    finally:
        server.stop()
    return phase


def summarised(out: dict, workers: int) -> dict:
    """The phases' memory peaks and the configuration, beside the phases."""
    for key in ("rss_max_mib", "rss_hwm_mib", "rss_sum_max_mib"):
        out[key] = max(p[key] for p in out["phases"])
    out["workers"] = workers
    return out


def measure(url: str, rate: float, duration: float, *, connections: int = 64, poll_every: int = 50,
            fallback_duration: float | None = None, max_phases: int = 4, workers: int = 1,
            external_regulators: bool = False) -> dict:
    """Phase 1 at ``rate``. If the server does not sustain it, another phase (fresh database and server,
    so the backlog of the first cannot leak in) at 80 % of the declarations it did file per second, then
    at half that rate each time, until one is sustained (up to ``max_phases``)."""
    out: dict = {"phases": []}
    seed = 31
    while len(out["phases"]) < max_phases:
        span = duration if not out["phases"] else (fallback_duration or duration)
        phase = fresh_phase(url, rate, span, seed, out, connections=connections, poll_every=poll_every, workers=workers,
                            external_regulators=external_regulators)
        out["phases"].append(phase)
        if phase["sustained"]:
            break
        if len(out["phases"]) == 1:
            # under overload the release count is cut short by the settle window: go by the filing rate
            next_rate = max(1.0, float(round(0.8 * phase["filed_rate"])))
            if next_rate >= 0.95 * rate:
                next_rate = max(1.0, float(round(rate / 2)))
        else:
            next_rate = max(1.0, round(rate / 2, 1))
        if next_rate >= rate:
            break
        rate, seed = next_rate, seed + 30
    return summarised(out, workers)


def measure_rates(url: str, rates: list[float], duration: float, *, connections: int = 64, poll_every: int = 50,
                  workers: int = 1, external_regulators: bool = True) -> dict:
    """One phase per rate (issue 13: the must's rate, then the aim's), each ``duration`` s on a fresh
    database and server (no backlog of one phase leaks into the next), each after the same warm-up."""
    out: dict = {"phases": []}
    for k, rate in enumerate(rates):
        phase = fresh_phase(url, rate, duration, 31 + 30 * k, out, connections=connections, poll_every=poll_every,
                            workers=workers, external_regulators=external_regulators)
        out["phases"].append(phase)
    return summarised(out, workers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=DEFAULT_PG)
    p.add_argument("--rate", type=float, default=300)
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--fallback-duration", type=float, help="seconds of each slower phase (default: --duration)")
    p.add_argument("--poll-every", type=int, default=50, help="poll the declaration view for one declaration in N")
    add_server_args(p)
    args = p.parse_args()
    res = measure(args.database_url, args.rate, args.duration, connections=args.connections, poll_every=args.poll_every,
                  fallback_duration=args.fallback_duration, workers=args.workers, external_regulators=args.external_regulators)
    print(json.dumps(res, indent=1, default=str))
    log(f"configuration: {res['configuration']}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
