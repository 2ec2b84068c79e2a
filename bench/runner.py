"""``bench/run``: measure every target of issue 7 on this machine and print them beside the targets.

    bench/run [--quick] [--rows intake,validation,ledger,preloaded,declarations] [--preload N]
              [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/swx_bench] [--json FILE]
              [--workers N] [--external-regulators]

Rows (and what measures them):

* ``intake``       bench/load.py: ``swx serve`` on a fresh database, distinct single-order filings
                   from wrk (Lua script over pre-built bodies) for 60 s, then: stored = 201s, every
                   filing in the ledger, ledger catch-up time; a py-spy profile of the server first.
* ``validation``   bench/intake.py --skip-http: swx's validation step vs bare lxml, one thread.
* ``ledger``       bench/ledger.py on PostgreSQL: bulk appends/s (and live appends), inclusion proof
                   at 10^6 entries, ``verify_log`` entries/s.
* ``preloaded``    bench/preload.py then bench/load.py: a fresh database with N filings cloned in
                   (default 10^6; ``--quick`` 10^4), the same intake measurement, compared with the
                   ``intake`` row; ``swx ledger verify`` (the command) timed on that database.
* ``declarations`` bench/pipeline.py: whole declarations (order, payment, waybill, list, each by its
                   own firm) at 300/s open-loop, first filing → released; server RSS sampled (max).

The rows that serve HTTP (intake, preloaded, declarations) start ``swx serve`` as it runs by default
(one process, regulator stand-ins mounted in it) unless ``--workers N`` (N > 1: uvicorn worker
processes; the stand-ins then run as their own process, ``swx regulators serve``) or
``--external-regulators`` says otherwise; the header says which ran. Server CPU is that of all its
processes; the stand-ins' CPU, when apart, is reported on its own; the memory row is the largest
single worker process.

The bench database's schema ``public`` is dropped and recreated several times; nothing else is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))  # before bench/, so that ``ledger`` is the package, not bench/ledger.py

from common import (
    DEFAULT_PG,
    Server,
    add_server_args,
    check_database,
    configuration,
    cpu_line,
    log,
    machine,
    machine_busy,
    register_firm,
)

ROWS = ("intake", "validation", "ledger", "preloaded", "declarations")


# --- the rows ------------------------------------------------------------------------------------------


def row_intake(args: argparse.Namespace, work: Path) -> dict:
    import load

    parties = load.bench_parties()
    with Server(args.database_url, env=args.intake_env, **server_kw(args)) as server:
        key = register_firm(server)
        load.register_parties(server, parties)
        return load.sustained_intake(server, key, parties, duration=args.duration, concurrency=args.concurrency,
                                     client=args.client, tag="E", workdir=work, profile_seconds=args.profile)


def row_preloaded(args: argparse.Namespace, work: Path) -> dict:
    import load
    import preload

    parties = load.bench_parties()
    key_dir = tempfile.mkdtemp(prefix="swx-preload-")
    # the template goes through its whole flow (delivered, answered), so the dispatcher runs here whatever
    # the measured window's settings
    server = Server(args.database_url, key_dir=key_dir, **server_kw(args))
    with server:
        key = register_firm(server)
        load.register_parties(server, parties)
        tmpl = preload.make_template(server, key, parties)
    log(f"pre-loading {args.preload:,} filings")
    pre = asyncio.run(preload.load(args.database_url, tmpl["guid"], args.preload, server.key_path))
    log(f"pre-loaded {pre['filings']:,} filings ({pre['entries']:,} ledger entries) in {pre['seconds']:.0f}s; database "
        f"{pre['database_bytes'] / 2**30:.1f} GiB; " + ", ".join(f"{k} {v:.0f}s" for k, v in pre["timings"].items()))
    verify = preload.verify_cli(server)
    log(f"swx ledger verify: {'OK' if verify['ok'] else 'FAILED'}, {verify['entries']:,} entries in {verify['seconds']:.1f}s "
        f"= {verify['rate']:,.0f}/s")
    measured = Server(args.database_url, env=args.intake_env, key_dir=key_dir, reset=False, **server_kw(args))
    with measured:  # the same database and key, now with the pre-load
        res = load.sustained_intake(measured, key, parties, duration=args.duration, concurrency=args.concurrency,
                                    client=args.client, tag="F", workdir=work, profile_seconds=0)
    return {"preload": pre, "verify_cli": verify, "intake": res}


def row_validation(args: argparse.Namespace, work: Path) -> dict:
    out = work / "validation.json"
    subprocess.run([sys.executable, str(BENCH / "intake.py"), "--skip-http", "--validations", str(args.validations),
                    "--repeat", "3", "--json", str(out)], cwd=ROOT, check=True, stdout=sys.stderr)
    return json.loads(out.read_text())


def row_ledger(args: argparse.Namespace, work: Path) -> dict:
    out = work / "ledger.json"
    subprocess.run([sys.executable, str(BENCH / "ledger.py"), "--skip-sqlite", "--database-url", args.database_url,
                    "--entries", str(args.ledger_entries), "--appends", str(args.appends), "--proofs", "2000",
                    "--json", str(out)], cwd=ROOT, check=True, stdout=sys.stderr)
    return json.loads(out.read_text())["postgresql"]


def row_declarations(args: argparse.Namespace, work: Path) -> dict:
    import pipeline

    return pipeline.measure(args.database_url, args.rate, args.decl_duration, connections=64, poll_every=50,
                            fallback_duration=args.decl_fallback, **server_kw(args))


def server_kw(args: argparse.Namespace) -> dict:
    return {"workers": args.workers, "external_regulators": args.external_regulators}


def serving(args: argparse.Namespace) -> str:
    """How the rows that serve HTTP ran swx (as Server.describe says it)."""
    return configuration(args.workers, args.external_regulators)


# --- the table -----------------------------------------------------------------------------------------


def _fmt(v: float, unit: str = "", digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}{unit}"


def table(results: dict, args: argparse.Namespace) -> list[tuple[str, str, str, str, str]]:
    """(row, measured, must, aim, met) for every target; 'met' is must/aim: yes, no, or '-' if not measured."""
    rows: list[tuple[str, str, str, str, str]] = []

    def met(ok_must: bool | None, ok_aim: bool | None) -> str:
        if ok_must is None:
            return "-"
        return "aim" if ok_aim else ("must" if ok_must else "NO")

    r = results.get("intake")
    if isinstance(r, dict) and "rate" in r:
        intact = r["stored_ok"] and r["ledger_ok"]
        fig = (f"{_fmt(r['rate'])}/s, p99 {_fmt(r['p99_ms'], ' ms', 1)}"
               + ("" if intact else " — NOT all stored/in ledger"))
        rows.append((f"intake, single-document filings, {args.duration:g} s sustained", fig, "≥ 1,500/s, p99 ≤ 100 ms", "≥ 4,000/s",
                     met(r["rate"] >= 1500 and r["p99_ms"] <= 100 and intact, r["rate"] >= 4000 and r["p99_ms"] <= 100 and intact)))
    else:
        rows.append((f"intake, single-document filings, {args.duration:g} s sustained", _err(r), "≥ 1,500/s, p99 ≤ 100 ms", "≥ 4,000/s", "-"))

    r = results.get("validation")
    if isinstance(r, dict) and "ratio" in r:
        rows.append(("validation vs bare lxml parse + validate", f"{r['ratio']:.2f}× ({_fmt(r['swx_per_s'])} vs {_fmt(r['bare_per_s'])}/s)",
                     "≥ 0.5×", "≥ 0.8×", met(r["ratio"] >= 0.5, r["ratio"] >= 0.8)))
    else:
        rows.append(("validation vs bare lxml parse + validate", _err(r), "≥ 0.5×", "≥ 0.8×", "-"))

    r = results.get("ledger")
    if isinstance(r, dict) and "bulk_appends_per_s" in r:
        rows.append(("ledger appends (bulk: submit_many + integrate)", f"{_fmt(r['bulk_appends_per_s'])}/s (live, 1 per tx: {_fmt(r['live_appends_per_s'])}/s)",
                     "≥ 10,000/s", "≥ 30,000/s", met(r["bulk_appends_per_s"] >= 10000, r["bulk_appends_per_s"] >= 30000)))
        size = r["proof_size"]
        label = "inclusion proof at 10^6 entries" if size >= 10**6 else f"inclusion proof at {size:,} entries (not 10^6)"
        rows.append((label, f"{r['inclusion_mean_ms']:.2f} ms mean, p99 {r['inclusion_p99_ms']:.2f} ms", "≤ 5 ms", "≤ 1 ms",
                     met(r["inclusion_mean_ms"] <= 5, r["inclusion_mean_ms"] <= 1)))
    else:
        rows.append(("ledger appends", _err(r), "≥ 10,000/s", "≥ 30,000/s", "-"))
        rows.append(("inclusion proof at 10^6 entries", _err(r), "≤ 5 ms", "≤ 1 ms", "-"))

    pre = results.get("preloaded")
    v = pre.get("verify_cli") if isinstance(pre, dict) else None
    led = results.get("ledger") if isinstance(results.get("ledger"), dict) else {}
    if v and v.get("ok"):
        extra = f"; verify_log in-process {_fmt(led['verify_per_s'])}/s at {led['verify_entries']:,}" if "verify_per_s" in led else ""
        rows.append(("`swx ledger verify`", f"{_fmt(v['rate'])} entries/s ({v['entries']:,} entries, {v['seconds']:.1f} s, whole command{extra})",
                     "≥ 200,000/s", "≥ 500,000/s", met(v["rate"] >= 200000, v["rate"] >= 500000)))
    elif "verify_per_s" in led:
        rows.append(("ledger verify (verify_log, bench/ledger.py)", f"{_fmt(led['verify_per_s'])} entries/s at {led['verify_entries']:,}",
                     "≥ 200,000/s", "≥ 500,000/s", met(led["verify_per_s"] >= 200000, led["verify_per_s"] >= 500000)))
    else:
        rows.append(("`swx ledger verify`", _err(pre), "≥ 200,000/s", "≥ 500,000/s", "-"))

    e = results.get("intake")
    if isinstance(pre, dict) and "intake" in pre and isinstance(e, dict) and "rate" in e:
        p = pre["intake"]
        change = p["rate"] / e["rate"] - 1
        n = pre["preload"]["filings"]
        label = "intake with 10^6 filings stored vs empty" if n >= 10**6 else f"intake with {n:,} filings stored vs empty (not 10^6)"
        intact = p["stored_ok"] and p["ledger_ok"]
        rows.append((label, f"{change:+.1%} ({_fmt(p['rate'])}/s vs {_fmt(e['rate'])}/s; p99 {_fmt(p['p99_ms'], ' ms', 1)})"
                     + ("" if intact else " — NOT all stored/in ledger"),
                     "within 20 %", "within 5 %", met(abs(change) <= 0.20 or change > 0, abs(change) <= 0.05 or change > 0)))
    else:
        rows.append(("intake with 10^6 filings stored vs empty", _err(pre), "within 20 %", "within 5 %", "-"))

    d = results.get("declarations")
    if isinstance(d, dict) and "phases" in d:
        first = d["phases"][0]
        last = d["phases"][-1]
        if first["sustained"]:
            fig = f"p95 {first['p95_s']:.2f} s (p50 {first['p50_s']:.2f} s) at {first['target_rate']:g}/s, {first['released']:,} released"
            must, aim = first["p95_s"] <= 2, first["p95_s"] <= 0.5
        else:
            tried = ", ".join(f"{ph['target_rate']:g}/s: p95 {_secs(ph['p95_s'])}" for ph in d["phases"][1:-1])
            fig = (f"NOT sustained at {first['target_rate']:g}/s (filed {first['filed_rate']:.0f} decl/s, {first['released']:,} "
                   f"released in the window){'; ' + tried if tried else ''}; at {last['target_rate']:g}/s: p95 {_secs(last['p95_s'])}"
                   f"{' (sustained)' if last['sustained'] else ' (not sustained either)'}")
            must = aim = False
        rows.append((f"declaration first filing → released at {args.rate:g}/s", fig, "p95 ≤ 2 s", "p95 ≤ 0.5 s", met(must, aim)))
        rss = d["rss_max_mib"]
        if d.get("workers", 1) > 1:
            label = f"memory of one server process under that load (RSS max, largest of {d['workers']} workers)"
            fig = f"{rss:.0f} MiB (all server processes together: {d['rss_sum_max_mib']:.0f} MiB)"
        else:
            label, fig = "memory of the server process under that load (RSS max)", f"{rss:.0f} MiB"
        rows.append((label, fig, "≤ 300 MiB", "≤ 150 MiB", met(rss <= 300, rss <= 150)))
    else:
        rows.append((f"declaration first filing → released at {args.rate:g}/s", _err(d), "p95 ≤ 2 s", "p95 ≤ 0.5 s", "-"))
        rows.append(("memory of the server process under that load", _err(d), "≤ 300 MiB", "≤ 150 MiB", "-"))
    return rows


def _secs(v: float) -> str:
    return "never (not released in the window)" if math.isinf(v) else f"{v:.2f} s"


def _err(r: object) -> str:
    if isinstance(r, dict) and "error" in r:
        return "failed: " + r["error"].splitlines()[-1][:80]
    return "not measured"


def render(rows: list[tuple[str, ...]], header: list[str]) -> str:
    cols = ["row", "measured", "must", "aim", "met?"]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [*header, "", "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |", "|" + line.replace("+", "|") + "|"]
    out += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in rows]
    out.append("")
    out.append("met?: 'aim' = aim met; 'must' = must met, aim not; 'NO' = must not met; '-' = not measured")
    return "\n".join(out)


def pipeline_rss(ph: dict) -> str:
    from pipeline import rss_text

    return rss_text(ph)


def notes(results: dict) -> list[str]:
    out = []
    for key, label in (("intake", "intake (empty)"), ("preloaded", "intake (pre-loaded)")):
        r = results.get(key)
        r = r.get("intake") if key == "preloaded" and isinstance(r, dict) else r
        if isinstance(r, dict) and "rate" in r:
            out.append(f"{label}: {r['client']}; {r['accepted']:,} filings in {r['elapsed']:.1f} s, statuses {r['statuses']}, "
                       f"p50 {r['p50_ms']:.1f} / p95 {r['p95_ms']:.1f} / p99 {r['p99_ms']:.1f} ms; stored {r['stored']:,} "
                       f"({r['unanswered_in_flight']} unanswered in flight at the stop); filing.accepted entries "
                       f"{r['filings_in_ledger']:,} = messages {r['messages_total']:,}: {r['ledger_ok']}; ledger caught up "
                       f"{r['ledger_catch_up_s'] * 1000:.0f} ms after the last answer; outbox still pending {r['outbox_pending']:,}; "
                       f"CPU: {cpu_line(r['cpu'])}; per filing: server {1000 * r['cpu']['server_cpu_s'] / max(1, r['accepted']):.1f} ms, "
                       f"PostgreSQL {1000 * r['cpu']['postgres_cpu_s'] / max(1, r['accepted']):.1f} ms, "
                       + (f"stand-ins {1000 * r['cpu']['regulators_cpu_s'] / max(1, r['accepted']):.1f} ms, "
                          if "regulators_cpu_s" in r["cpu"] else "")
                       + f"generator {1000 * r['cpu']['generator_cpu_s'] / max(1, r['accepted']):.2f} ms")
    pre = results.get("preloaded")
    if isinstance(pre, dict) and "preload" in pre:
        p = pre["preload"]
        out.append(f"pre-load: {p['filings']:,} filings, {p['entries']:,} ledger entries in {p['seconds']:.0f} s, database "
                   f"{p['database_bytes'] / 2**30:.1f} GiB")
    d = results.get("declarations")
    if isinstance(d, dict) and "phases" in d:
        for ph in d["phases"]:
            out.append(f"declarations at {ph['target_rate']:g}/s for {ph['duration_s']:.0f} s: {ph['filed_ok']:,}/{ph['declarations']:,} "
                       f"filed (statuses {ph['filing_statuses']}), filed at {ph['filed_rate']:.0f}/s, answers "
                       f"{ph['answers_behind_s']:.1f} s behind schedule, {ph['released']:,} released ({ph['released_rate']:.0f}/s), "
                       f"{ph['refused']} refused; p50 {ph['p50_s']:.2f} / p95 {ph['p95_s']:.2f} / p99 {ph['p99_s']:.2f} s; polled "
                       f"sample {ph['polled_released']}/{ph['polled']}: p95 {ph['polled_p95_s']:.2f} s; "
                       f"{pipeline_rss(ph)}; CPU: {cpu_line(ph['cpu'])}")
    led = results.get("ledger")
    if isinstance(led, dict) and "bulk_appends_per_s" in led:
        out.append(f"ledger: submit_many {led['submit_many_per_s']:,.0f}/s, integrate {led['integrate_per_s']:,.0f}/s; "
                   f"consistency proof {led['consistency_mean_ms']:.2f} ms mean; verify_log {led['verify_per_s']:,.0f}/s")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of about two minutes")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from: {', '.join(ROWS)}")
    p.add_argument("--database-url", default=DEFAULT_PG, help="the bench's PostgreSQL database (schema public is reset)")
    p.add_argument("--preload", type=int, help="filings pre-loaded for the 'preloaded' row (default 10^6; quick 10^4)")
    p.add_argument("--duration", type=float, help="seconds of sustained intake (default 60; quick 10)")
    p.add_argument("--concurrency", type=int, default=32, help="connections of the intake load generator")
    p.add_argument("--client", choices=("wrk", "python"), default="wrk")
    p.add_argument("--profile", type=int, help="seconds of py-spy profile of the server before the intake window (default 20; quick 0)")
    p.add_argument("--rate", type=float, default=300, help="declarations per second offered")
    p.add_argument("--json", help="write every figure to this file as well")
    p.add_argument("--no-dispatch", action="store_true", help="intake rows with SWX_DISPATCH=false (deliveries wait in the outbox)")
    add_server_args(p)  # default 1 worker for now
    args = p.parse_args()
    q = args.quick
    args.preload = args.preload or (10_000 if q else 1_000_000)
    args.duration = args.duration or (10 if q else 60)
    args.profile = args.profile if args.profile is not None else (0 if q else 20)
    args.ledger_entries = 100_000 if q else 1_000_000
    args.appends = 1000 if q else 5000
    args.validations = 500 if q else 2000
    args.decl_duration = 5 if q else 30
    args.decl_fallback = 5 if q else 20
    args.intake_env = {"SWX_DISPATCH": "false"} if args.no_dispatch else {}
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = set(rows) - set(ROWS)
    if unknown:
        p.error(f"unknown rows {', '.join(sorted(unknown))}; rows are {', '.join(ROWS)}")
    if "preloaded" in rows and "intake" not in rows:
        rows.insert(0, "intake")  # the pre-loaded figure is compared with the empty one
    check_database(args.database_url)
    if args.profile and not (shutil.which("py-spy") or Path(sys.executable).with_name("py-spy").exists()):
        log("py-spy missing: installing it into this environment (pip install py-spy)")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=False)

    info = machine(args.database_url)
    info["busy_before"] = machine_busy(3.0)
    if info["busy_before"] > 0.15:
        log(f"the machine is {info['busy_before']:.0%} busy before the run: other processes will skew the figures")
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="swx-run-"))
    results: dict = {}
    funcs = {"intake": row_intake, "validation": row_validation, "ledger": row_ledger, "preloaded": row_preloaded,
             "declarations": row_declarations}
    for name in ROWS:
        if name not in rows:
            continue
        log(f"--- {name}")
        t = time.perf_counter()
        try:
            results[name] = funcs[name](args, work)
        except Exception as exc:  # noqa: BLE001 - one failed row must not lose the others
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        log(f"--- {name} done in {time.perf_counter() - t:.0f}s")
    elapsed = time.time() - started

    from load import print_profile

    header = [
        f"swx bench/run — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}, {elapsed / 60:.1f} min{' (--quick)' if q else ''}",
        (f"machine: {info['cpus']} × {info['cpu_model']}, {info['ram_gib']} GiB RAM, Linux {info['kernel']}; {info['python']}; "
        f"PostgreSQL {info['postgresql']}; swx {info['commit']}; machine {info['busy_before']:.0%} busy just before the run"),
        (f"method: {serving(args)}, uvicorn + uvloop"
        f"{', SWX_DISPATCH=false for intake' if args.no_dispatch else ''}, on PostgreSQL, load generated on the same machine; "
        f"intake {args.duration:g} s at {args.concurrency} connections ({args.client}); ledger at {args.ledger_entries:,} entries; "
        f"pre-load {args.preload:,} filings; declarations open-loop at {args.rate:g}/s for {args.decl_duration:g} s"),
    ]
    print(render(table(results, args), header))
    print()
    for n in notes(results):
        print("  - " + n)
    prof = results.get("intake", {}).get("profile") if isinstance(results.get("intake"), dict) else None
    if prof:
        print(f"\nserver profile during intake ({prof.get('how', 'py-spy')}, {args.profile} s, "
              f"{prof['rate_while_profiled']:,.0f} filings/s while profiled):")
        print_profile(prof, top=15)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "args": {k: v for k, v in vars(args).items()},
                                                "results": results, "elapsed_s": elapsed}, indent=1, default=str))


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
