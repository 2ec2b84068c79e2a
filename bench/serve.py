"""The default ``swx serve`` under load, every order delivered to customs and answered (issue 13).

    .venv/bin/python bench/serve.py [--duration 60] [--connections 64] [--drain-timeout 180]
                                    [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/swx_bench]

``swx serve`` runs exactly as a user types it: the installed ``swx`` command, no flags, every setting at
its default. The environment gives it only ``SWX_DATABASE_URL`` (PostgreSQL), ``SWX_OPERATOR_TOKEN``
(so the bench can register firms) and ``SWX_PORT`` (a free port whose port + 100 is free too, where a
``swx serve`` that starts the stand-ins as a child of its own puts them by default); every other
``SWX_*`` variable of the caller's environment is left out, and it runs in an empty directory (its
``var/`` there: the ledger key). The regulator stand-ins are whatever that ``swx serve`` runs by
default (a child process ``swx regulators serve``). Nothing here
needs to know which: readiness and completion are read through the window's own API, and the
child, when there is one, is found in the server's process tree by its command line.

Steps, on a freshly reset bench database:

1. a firm and the enterprises its orders name are registered (operator API);
2. warm-up: 5 s of wrk at the same connections; then the same wait as below, so that its backlog
   does not run into the measured window;
3. the window: wrk (``bench/wrk_filings.lua``, 64 connections) posts distinct single-order CEB311
   filings for ``--duration`` s; a filing counts once it is answered 201 (replays left out);
4. drain: the load has stopped; ``GET /v1/stats`` is polled (every 0.5 s) until every stored order
   has customs' answer applied (its document state is no longer the filed ``2``: customs' receipt,
   ``120``, was ingested), then ``GET /v1/deliveries?regulator=customs`` checks that no customs
   delivery of a message is left pending, delivered but unanswered, or dead. Bounded by
   ``--drain-timeout``; the time from the last answer to the end of the drain is reported;
5. checks: stored filings = 201 answers (at most one per connection more: requests in flight when wrk
   stopped); the ledger (after its catch-up) holds a ``filing.accepted`` entry per message, and at
   least one ``delivery.delivered``, ``receipt.received`` and ``document.state`` entry per order.

CPU: the server's process tree (``/proc``), the stand-ins' process apart when it is one (its command
line holds ``regulators serve``), PostgreSQL (all ``postgres`` processes), wrk's own (``wait4``), over
the window and over the window plus the drain (per filing: everything each filing caused).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import (
    DEFAULT_PG,
    TOKEN,
    CpuWindow,
    Server,
    cpu_line,
    free_port,
    log,
    pg_dsn,
    register_firm,
    regulators_child,
)

CUSTOMS = "customs"
FILED = "2"  # a document's state as filed (STATUS_DECLARED), until customs' word replaces it


def swx_command() -> str:
    """The ``swx`` console script of this environment (the command a user types)."""
    here = Path(sys.executable).with_name("swx")
    found = str(here) if here.exists() else shutil.which("swx")
    if not found:
        raise RuntimeError("no `swx` command: pip install -e . in this environment")
    return found


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(offset: int = 100) -> int:
    """A free port P with P + ``offset`` free too (the stand-ins' default port beside ``swx serve``'s)."""
    for _ in range(200):
        p = free_port()
        if p + offset < 65536 and _bindable(p + offset):
            return p
    raise RuntimeError("no free pair of ports")


class DefaultServe(Server):
    """``swx serve`` as typed, with its defaults (see the module docstring)."""

    def __init__(self, url: str, *, reset: bool = True, key_dir: str | None = None) -> None:
        super().__init__(url, reset=reset, key_dir=key_dir)
        self.port = free_port_pair()
        self.base = f"http://127.0.0.1:{self.port}"

    @property
    def key_path(self) -> str:
        return os.path.join(self.tmp, "var", "ledger.key")  # the default, relative to where it runs

    @property
    def regulators_pid(self) -> int | None:
        """The stand-ins' process when ``swx serve`` started them as its child; None when in-process."""
        return regulators_child(self.pid) if self.proc is not None and self.proc.poll() is None else None

    def command(self) -> list[str]:
        return [swx_command(), "serve"]

    def cwd(self) -> Path:
        return Path(self.tmp)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWX_")}
        return {**env, "SWX_DATABASE_URL": self.url, "SWX_OPERATOR_TOKEN": TOKEN, "SWX_PORT": str(self.port)}

    def describe(self) -> str:
        child = self.regulators_pid
        where = f"a child process `swx regulators serve` (pid {child})" if child else "mounted in-process (/mock)"
        return f"`swx serve` as typed (defaults; {self.workers} process), regulator stand-ins {where}"


# --- reading progress through the API ------------------------------------------------------------------


def stats(server: Server) -> dict:
    r = httpx.get(server.base + "/v1/stats", headers=server.op(), timeout=60)
    r.raise_for_status()
    return r.json()


def order_states(server: Server) -> tuple[int, dict[str, int]]:
    """(filings accepted, stored orders by document state), from ``GET /v1/stats``."""
    s = stats(server)
    return s["filings"]["accepted"], dict(s["documents"]["byKind"].get("order", {}))


def unfinished_deliveries(server: Server, regulator: str = CUSTOMS, most_pages: int = 20) -> dict[str, int]:
    """Deliveries of messages to ``regulator`` not yet answered: pending, delivered (no verdict yet), dead.
    A count that reached ``most_pages`` pages is a lower bound (marked with ``truncated``)."""
    out: dict[str, int] = {}
    for state in ("pending", "delivered", "dead"):
        after, n, pages = 0, 0, 0
        while pages < most_pages:
            r = httpx.get(server.base + "/v1/deliveries", headers=server.op(), timeout=60,
                          params={"state": state, "regulator": regulator, "after": after, "limit": 500})
            r.raise_for_status()
            page = r.json()
            n += sum(1 for d in page["deliveries"] if d["kind"] == "message")
            pages += 1
            if len(page["deliveries"]) < 500:
                break
            after = page["next"]
        else:
            out["truncated"] = 1
        out[state] = n
    return out


def drain(server: Server, timeout: float, every: float = 0.5) -> dict:
    """Wait until every stored order has customs' answer (see the module docstring); bounded by ``timeout``."""
    t0 = time.perf_counter()
    accepted, states = order_states(server)
    while True:
        orders = sum(states.values())
        answered = orders - states.get(FILED, 0)
        if orders >= accepted and answered >= orders:
            break
        if time.perf_counter() - t0 > timeout:
            break
        time.sleep(every)
        accepted, states = order_states(server)
    waited = time.perf_counter() - t0
    left = unfinished_deliveries(server)
    orders = sum(states.values())
    answered = orders - states.get(FILED, 0)
    done = orders >= accepted and answered >= orders and not any(left.get(s) for s in ("pending", "delivered", "dead"))
    return {"drained": done, "waited_s": waited, "accepted": accepted, "orders": orders, "answered": answered,
            "orders_by_state": states, "deliveries_unfinished": left}


# --- the ledger ------------------------------------------------------------------------------------------


async def ledger_kinds(url: str) -> dict[str, int]:
    """Entries of the ledger by kind."""
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        rows = await conn.fetch(
            "SELECT substring(convert_from(entry, 'UTF8') from '\"kind\":\"([^\"]+)\"') AS kind, count(*) AS n "
            "FROM ledger_entries GROUP BY 1")
        return {r["kind"] or "?": r["n"] for r in rows}
    finally:
        await conn.close()


# --- the measurement -------------------------------------------------------------------------------------


def measure(server: Server, key: str, parties, *, duration: float, connections: int, workdir: Path,
            drain_timeout: float, client: str = "wrk", warmup: float = 5.0, max_rate: float = 6000) -> dict:
    import load

    url = server.url
    wrk = load.ensure_wrk() if client == "wrk" else None
    used = "wrk" if wrk else "python"
    if client == "wrk" and not wrk:
        log("wrk unavailable: falling back to the Python client")
    # 1. warm-up, and its backlog drained
    warm_n = min(int(max_rate * warmup), 20000)
    load.write_orders(workdir / "serve-warm.bodies", warm_n, parties, "SVW")
    res = load.drive(used, wrk, server.base, key, workdir / "serve-warm.bodies", warmup, connections)
    ok = res["statuses"].get(201, 0) - res["replays"]
    rate = ok / res["elapsed"]
    if ok == 0:
        raise RuntimeError(f"warm-up filed nothing: {res}")
    asyncio.run(load.settle(url))
    warm_drain = drain(server, drain_timeout)
    log(f"warm-up: {ok:,} filings in {res['elapsed']:.1f}s = {rate:,.0f}/s, statuses {res['statuses']}; its backlog "
        f"{'drained' if warm_drain['drained'] else 'NOT drained'} in {warm_drain['waited_s']:.1f}s; {server.describe()}")
    # 2. bodies for the window
    need = int(min(max_rate, max(rate * 1.6, 200)) * duration) + 2000
    t = time.perf_counter()
    load.write_orders(workdir / "serve-main.bodies", need, parties, "SVM")
    log(f"built {need:,} distinct bodies in {time.perf_counter() - t:.1f}s")
    # 3. the window
    before = asyncio.run(load.db_counts(url))
    window = CpuWindow(server.pid, server.regulators_pid).begin()
    whole = CpuWindow(server.pid, server.regulators_pid).begin()
    res = load.drive(used, wrk, server.base, key, workdir / "serve-main.bodies", duration, connections)
    shares = window.end(res.get("generator_cpu_s"))
    t_end = time.perf_counter()
    # 4. drain
    asyncio.run(load.settle(url))
    done = drain(server, drain_timeout)
    drain_s = time.perf_counter() - t_end
    total = whole.end(res.get("generator_cpu_s"))
    # 5. checks
    catch_up = asyncio.run(load.ledger_catch_up(url))
    after = asyncio.run(load.db_counts(url))
    kinds = asyncio.run(ledger_kinds(url))
    accepted = res["statuses"].get(201, 0) - res["replays"]
    stored = after["messages"] - before["messages"]
    orders = done["orders"]
    ledger_ok = (kinds.get("filing.accepted", 0) == after["messages"]
                 and all(kinds.get(k, 0) >= orders for k in ("delivery.delivered", "receipt.received", "document.state")))
    out = {
        **res, "configuration": server.describe(), "regulators_process": server.regulators_pid is not None,
        "connections": connections, "accepted": accepted, "rate": accepted / res["elapsed"], "cpu": shares, "cpu_with_drain": total,
        "stored": stored, "stored_ok": accepted <= stored <= accepted + connections, "unanswered_in_flight": stored - accepted,
        "messages_total": after["messages"], "drain": done, "drain_s": drain_s, "drained": done["drained"],
        "ledger_kinds": kinds, "ledger_ok": ledger_ok, "ledger_catch_up_s": catch_up, "warmup_rate": rate,
        "warmup_drain": warm_drain,
    }
    log(f"serve: {accepted:,} in {res['elapsed']:.1f}s = {out['rate']:,.0f}/s; p50 {res['p50_ms']:.1f} ms, p99 "
        f"{res['p99_ms']:.1f} ms; stored {stored:,} ({'ok' if out['stored_ok'] else 'MISMATCH'}); every order answered by "
        f"customs: {'yes' if done['drained'] else 'NO'} {drain_s:.1f}s after the load stopped ({done['answered']:,}/"
        f"{done['orders']:,}; unfinished customs deliveries {done['deliveries_unfinished']}); ledger "
        f"{'complete' if ledger_ok else 'INCOMPLETE'}; window: {cpu_line(shares)}")
    return out


def run(url: str, *, duration: float, connections: int, drain_timeout: float, client: str = "wrk",
        workdir: Path | None = None) -> dict:
    import load

    workdir = workdir or Path(tempfile.mkdtemp(prefix="swx-serve-"))
    parties = load.bench_parties()
    with DefaultServe(url) as server:
        key = register_firm(server)
        load.register_parties(server, parties)
        return measure(server, key, parties, duration=duration, connections=connections, workdir=workdir,
                       drain_timeout=drain_timeout, client=client)


def per_filing(cpu: dict, n: int) -> str:
    """CPU per filing over a window, in words."""
    n = max(1, n)
    parts = [f"server {1000 * cpu['server_cpu_s'] / n:.1f} ms"]
    if "regulators_cpu_s" in cpu:
        parts.append(f"stand-ins {1000 * cpu['regulators_cpu_s'] / n:.1f} ms")
    parts += [f"PostgreSQL {1000 * cpu['postgres_cpu_s'] / n:.1f} ms", f"load generator {1000 * cpu['generator_cpu_s'] / n:.2f} ms"]
    return ", ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=DEFAULT_PG)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--drain-timeout", type=float, default=180)
    p.add_argument("--client", choices=("wrk", "python"), default="wrk")
    args = p.parse_args()
    res = run(args.database_url, duration=args.duration, connections=args.connections, drain_timeout=args.drain_timeout,
              client=args.client)
    print(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
