"""Shared pieces of the benchmarks: the machine, process accounting, a server under test, a lean client.

Nothing here changes swx: it starts ``swx serve`` as a subprocess (``python -m gateway.cli serve``)
on a database it may reset, and reads what the kernel says about the processes involved.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/swx_bench"
TOKEN = "bench-operator-token"
FIRM_CODE, FIRM_NAME, FIRM_DXP = "3301960AB1", "基准测试电子商务有限公司", "DXPENT3301960AB1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROTECTED_DATABASES = {"test", "test2", "swx_scratch", "test_scratch", "test2_scratch"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the machine ---------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def git_commit() -> str:
    """The commit of the work tree (read-only git commands), marked ``+dirty`` when it has changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pg_dsn(url: str) -> str:
    """asyncpg's DSN for a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


def check_database(url: str) -> None:
    name = urlsplit(pg_dsn(url)).path.lstrip("/")
    if name in PROTECTED_DATABASES:
        raise SystemExit(f"refusing to touch database {name!r}: it is not the bench's")


def pg_version(url: str) -> str:
    import asyncpg

    async def go() -> str:
        conn = await asyncpg.connect(pg_dsn(url))
        try:
            return (await conn.fetchval("SHOW server_version")).split()[0]
        finally:
            await conn.close()

    try:
        return asyncio.run(go())
    except Exception as exc:  # noqa: BLE001 - only a header line
        return f"unreachable ({exc.__class__.__name__})"


def machine(url: str | None) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "ram_gib": round(mem_total_gib(), 1),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "postgresql": pg_version(url) if url and url.startswith("postgresql") else "-",
        "commit": git_commit(),
        "kernel": platform.release(),
    }


def reset_postgres(url: str) -> None:
    """Drop and recreate schema ``public`` of the bench database (never another database)."""
    import asyncpg

    check_database(url)

    async def reset() -> None:
        conn = await asyncpg.connect(pg_dsn(url))
        try:
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(reset())


# --- processes -----------------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process has used, all its threads included."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def proc_status(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` size field in bytes (VmRSS, VmHWM, ...); 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of ``/proc/PID/stat`` (state, ppid, ...); None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def proc_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants (uvicorn's master and its worker processes, the
    multiprocessing resource tracker, ...), parents before children."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            parts = _stat_fields(int(entry.name))
            if parts is not None:
                children.setdefault(int(parts[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        if p == pid and _stat_fields(p) is None:
            return []
        out.append(p)
        todo += sorted(children.get(p, []))
    return out


def proc_start(pid: int) -> int | None:
    """When a process started (clock ticks since boot): with its pid, who it is; None if gone."""
    parts = _stat_fields(pid)
    return int(parts[19]) if parts is not None and parts[0] != "Z" else None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of every live process of the tree under ``pid``, by pid."""
    out = {}
    for p in proc_tree(pid):
        parts = _stat_fields(p)
        if parts is not None:
            out[p] = (int(parts[11]) + int(parts[12])) / CLK_TCK
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


STAND_INS_MARK = "regulators serve"


def regulators_child(pid: int) -> int | None:
    """The regulator stand-ins' process when ``swx serve`` started them as a child of its own (its command
    line holds ``regulators serve``), else None (mounted in-process, or none)."""
    for p in proc_tree(pid)[1:]:
        if STAND_INS_MARK in _cmdline(p):
            return p
    return None


def worker_pids(pid: int) -> list[int]:
    """The processes of ``swx serve`` that serve requests: with ``--workers N`` > 1, uvicorn's N worker
    children (``multiprocessing.spawn``, the resource tracker left out); else the server process itself."""
    kids = [p for p in proc_tree(pid)[1:] if "spawn_main" in _cmdline(p)]
    return kids or [pid]


def postgres_cpu() -> float:
    """CPU seconds of every process named ``postgres`` on the machine, backends that exited included."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        if comm == "postgres":
            # utime + stime, and cutime + cstime: the postmaster collects the CPU of backends that exited
            parts = raw.rsplit(")", 1)[1].split()
            total += (int(parts[11]) + int(parts[12]) + int(parts[13]) + int(parts[14])) / CLK_TCK
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(v) for v in fields]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


@dataclass
class CpuWindow:
    """CPU used by the server, PostgreSQL, the load generator and the machine over one window.

    The server's CPU is that of its whole process tree (with ``--workers N`` uvicorn's master and its
    N worker processes), per pid: a process that appears during the window counts from zero, one
    that exits during it is lost (the workers are expected to live through the window; see
    ``server_processes`` and ``server_procs_changed``). The regulator stand-ins, when they run in a
    process of their own (``regulators_pid``, or found in the server's tree by its command line,
    ``regulators serve``: a ``swx serve`` that starts them as its child), are counted apart as
    ``regulators`` and left out of the server's figure.
    """

    server_pid: int
    regulators_pid: int | None = None
    start_wall: float = 0.0
    start: dict[str, float] = field(default_factory=dict)
    start_trees: dict[str, dict[int, float]] = field(default_factory=dict)
    result: dict[str, float] = field(default_factory=dict)

    def _trees(self) -> dict[str, dict[int, float]]:
        trees = {"server": tree_cpu(self.server_pid)}
        if self.regulators_pid is not None:
            trees["regulators"] = regs = tree_cpu(self.regulators_pid)
            for p in regs:  # the stand-ins as the server's child: theirs, not the server's
                trees["server"].pop(p, None)
        return trees

    def begin(self) -> CpuWindow:
        if self.regulators_pid is None:
            self.regulators_pid = regulators_child(self.server_pid)
        busy, total = machine_cpu()
        self.start_trees = self._trees()
        self.start = {"postgres": postgres_cpu(), "self": _self_cpu(), "busy": busy, "total": total}
        self.start_wall = time.perf_counter()
        return self

    def end(self, generator_cpu: float | None = None) -> dict[str, float]:
        """Shares of the machine (1.0 = every core busy for the whole window) and CPU seconds."""
        wall = time.perf_counter() - self.start_wall
        trees = self._trees()
        busy, total = machine_cpu()
        cores = os.cpu_count() or 1
        used = {name: sum(cpu - self.start_trees[name].get(p, 0.0) for p, cpu in tree.items()) for name, tree in trees.items()}
        used = {"server": used["server"], "postgres": postgres_cpu() - self.start["postgres"],
                "generator": generator_cpu if generator_cpu is not None else _self_cpu() - self.start["self"],
                **({"regulators": used["regulators"]} if "regulators" in used else {})}
        self.result = {"wall": wall, **{f"{k}_cpu_s": v for k, v in used.items()},
                       **{f"{k}_share": v / (wall * cores) for k, v in used.items()},
                       "machine_busy_share": (busy - self.start["busy"]) / max(1e-9, total - self.start["total"]),
                       "server_processes": len(trees["server"]),
                       "server_procs_changed": set(trees["server"]) != set(self.start_trees["server"])}
        self.result["other_share"] = max(0.0, self.result["machine_busy_share"] - sum(self.result[f"{k}_share"] for k in used))
        if self.result["server_procs_changed"]:
            log(f"the server's processes changed during the window: {sorted(self.start_trees['server'])} -> "
                f"{sorted(trees['server'])} (CPU of a process that exited is not counted)")
        return self.result


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def cpu_line(c: dict[str, float]) -> str:
    procs = c.get("server_processes", 1)
    server = f"server {c['server_share']:.0%}" + (f" ({procs} processes)" if procs > 1 else "")
    regulators = f"regulator stand-ins {c['regulators_share']:.0%}, " if "regulators_share" in c else ""
    return (f"machine busy {c['machine_busy_share']:.0%} of {os.cpu_count()} cores: {server}, {regulators}"
            f"PostgreSQL {c['postgres_share']:.0%}, load generator {c['generator_share']:.0%}, "
            f"everything else {c.get('other_share', 0):.0%}")


def machine_busy(seconds: float = 3.0) -> float:
    """Share of the machine's CPU in use over ``seconds`` (before a run: is anything else running?)."""
    b0, t0 = machine_cpu()
    time.sleep(seconds)
    b1, t1 = machine_cpu()
    return (b1 - b0) / max(1e-9, t1 - t0)


# --- the server under test -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REGULATORS = ("customs", "inspection", "tax", "fx")
DELIVERY_TOKEN = "bench-delivery-token"


def routes_toml(regulators_base: str) -> str:
    """swx's default routing table (gateway/routing/routes.toml) with every regulator's url pointing at
    the stand-ins of ``swx regulators serve`` at ``regulators_base`` (``{base}/customs``, ...)."""
    import tomllib

    table = tomllib.loads((ROOT / "gateway" / "routing" / "routes.toml").read_text())
    lines = ["# written by bench/common.py: swx's default table, regulators out of process", "", "[messages]"]
    # JSON strings and arrays of strings are TOML too
    lines += [f"{json.dumps(code)} = {json.dumps(names)}" for code, names in table["messages"].items()]
    for name, reg in table["regulators"].items():
        lines += ["", f"[regulators.{name}]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in {**reg, "url": f"{regulators_base}/{name}"}.items()]
    return "\n".join(lines) + "\n"


def configuration(workers: int = 1, external_regulators: bool = False, dispatch: bool = True) -> str:
    """How a :class:`Server` with these arguments runs swx, in words."""
    if not dispatch:
        procs = f"{workers} worker processes" if workers > 1 else "1 process"
        procs += ", SWX_DISPATCH=false: deliveries wait in the outbox"
    else:
        procs = f"{workers} worker processes, a dispatcher in each" if workers > 1 else "1 process, dispatcher in it"
    where = ("their own process (swx regulators serve, started by the bench)" if external_regulators or workers > 1
             else "a child process of swx serve (as it starts them)")
    return f"swx serve ({procs}), regulator stand-ins {where}"


class Server:
    """``swx serve`` in a subprocess on ``url``; ``reset`` drops the bench database's schema first.

    By default one process, the regulator stand-ins a child process it starts (as ``swx serve`` runs
    out of the box). With ``workers`` > 1, or ``external_regulators``, the stand-ins run as their own process
    (``swx regulators serve``), the server with ``SWX_MOCK_REGULATORS=false``, a routing table pointing
    at them and a delivery token both share; once the server is up, the operator issues the four
    regulator keys and the stand-ins are started with them.
    """

    def __init__(self, url: str, *, reset: bool = True, env: dict[str, str] | None = None, key_dir: str | None = None,
                 log_path: str | None = None, workers: int = 1, external_regulators: bool = False) -> None:
        self.url = url
        self.tmp = key_dir or tempfile.mkdtemp(prefix="swx-bench-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.reset = reset
        self.log_path = log_path or os.path.join(self.tmp, "server.log")
        self.proc: subprocess.Popen | None = None
        self.workers = max(1, workers)
        self.external = external_regulators or self.workers > 1
        self.regulators_port = free_port() if self.external else None
        self.child_regulators_port = free_port()
        self.regulators_base = f"http://127.0.0.1:{self.regulators_port}" if self.external else None
        self.regulators_log_path = os.path.join(self.tmp, "regulators.log")
        self.regulators: subprocess.Popen | None = None
        self.regulator_keys: dict[str, str] = {}

    @property
    def key_path(self) -> str:
        return os.path.join(self.tmp, "ledger.key")

    @property
    def routes_path(self) -> str:
        return os.path.join(self.tmp, "routes.toml")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def regulators_pid(self) -> int | None:
        """The stand-ins' process when they run out of process, else None (they are in the server's)."""
        return self.regulators.pid if self.regulators is not None else None

    def worker_pids(self) -> list[int]:
        """The processes serving requests (uvicorn's workers; the server process itself when only one)."""
        return worker_pids(self.pid) if self.workers > 1 else [self.pid]

    def describe(self) -> str:
        """Which configuration runs, for headers and notes."""
        return configuration(self.workers, self.external, self.extra_env.get("SWX_DISPATCH", "true").lower() != "false")

    def env(self) -> dict[str, str]:
        env = {**os.environ, "SWX_DATABASE_URL": self.url, "SWX_OPERATOR_TOKEN": TOKEN, "SWX_LOG_LEVEL": "WARNING",
               "SWX_LEDGER_KEY_PATH": self.key_path}
        if not self.external:  # swx serve starts the stand-ins: on a port known to be free
            env["SWX_REGULATORS_PORT"] = str(self.child_regulators_port)
        if self.external:
            env.update({"SWX_MOCK_REGULATORS": "false", "SWX_ROUTES": self.routes_path, "SWX_DELIVERY_TOKEN": DELIVERY_TOKEN})
        return {**env, **self.extra_env}

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port)]
        return cmd + (["--workers", str(self.workers)] if self.workers > 1 else [])

    def cwd(self) -> Path:
        return ROOT

    def regulators_env(self) -> dict[str, str]:
        return {**self.env(), "SWX_MOCK_KEYS": json.dumps(self.regulator_keys), "SWX_MOCK_DELIVERY_TOKEN": DELIVERY_TOKEN,
                "SWX_MOCK_OPERATOR_TOKEN": TOKEN}

    def start(self) -> Server:
        if self.reset:
            if self.url.startswith("postgresql"):
                reset_postgres(self.url)
            self.reset = False
        if self.external:
            Path(self.routes_path).write_text(routes_toml(self.regulators_base))
        out = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(self.command(), cwd=self.cwd(), env=self.env(), stdout=out, stderr=subprocess.STDOUT)
        try:
            self._wait_up(self.proc, "swx serve", self.log_path, lambda: httpx.get(self.base + "/healthz", timeout=2).status_code == 200)
            if self.workers > 1:  # /healthz answers once one worker is up: wait for all to exist (the warm-ups do the rest)
                self._wait_up(self.proc, "swx serve workers", self.log_path,
                              lambda: len(set(worker_pids(self.pid)) - {self.pid}) >= self.workers)
            if self.external:
                self.start_regulators()
        except BaseException:
            self.stop()
            raise
        return self

    def start_regulators(self) -> None:
        """Issue the four regulator keys (as the operator) and start ``swx regulators serve`` with them."""
        for name in REGULATORS:
            r = httpx.post(f"{self.base}/v1/regulators/{name}/keys", headers=self.op(), timeout=30)
            r.raise_for_status()
            self.regulator_keys[name] = r.json()["apiKey"]
        out = open(self.regulators_log_path, "ab")  # noqa: SIM115 - lives as long as the stand-ins
        self.regulators = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "regulators", "serve", "--port", str(self.regulators_port),
             "--gateway", self.base], cwd=ROOT, env=self.regulators_env(), stdout=out, stderr=subprocess.STDOUT)

        def all_up() -> bool:
            return all(httpx.get(f"{self.regulators_base}/{n}/_health", timeout=2).status_code == 200 for n in REGULATORS)

        self._wait_up(self.regulators, "swx regulators serve", self.regulators_log_path, all_up)

    @staticmethod
    def _wait_up(proc: subprocess.Popen, what: str, log_path: str, up: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}; see {log_path}")
            try:
                if up():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not come up; see {log_path}")

    def stop(self, grace: float = 30) -> None:
        """The server first (its dispatchers stop delivering), then the stand-ins.

        With several workers, uvicorn's master stops its workers and waits for each. A worker whose
        shutdown hangs would hold the master forever, and killing the master alone would leave that
        worker running on its own (still dispatching and sequencing against the bench database, under
        the next run's server). So a worker still alive ``grace`` s after the signal is killed (and
        named in the log), then the master if need be, then anything left of the tree it had."""
        if self.proc is not None and self.proc.poll() is None:
            tree = [(p, proc_start(p)) for p in proc_tree(self.proc.pid)[1:]]
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                stuck = [p for p, t in tree if proc_start(p) == t and "spawn_main" in _cmdline(p)]
                log(f"swx serve still stopping after {grace:g} s: killing worker(s) {stuck} that did not finish "
                    f"their shutdown; see {self.log_path}")
                for p in stuck:
                    _kill(p)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            deadline = time.monotonic() + 2  # the resource tracker leaves just after the master
            while time.monotonic() < deadline and any(proc_start(p) == t for p, t in tree):
                time.sleep(0.05)
            for p, t in tree:  # a worker or resource tracker that outlived the master
                if proc_start(p) == t:
                    log(f"process {p} of swx serve outlived it: killed ({_cmdline(p)[:80]})")
                    _kill(p)
        if self.regulators is not None and self.regulators.poll() is None:
            self.regulators.send_signal(signal.SIGINT)
            try:
                self.regulators.wait(grace)
            except subprocess.TimeoutExpired:
                self.regulators.kill()
                self.regulators.wait(10)

    def __enter__(self) -> Server:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- calls as the operator --
    def op(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def register(self, body: dict) -> str:
        r = httpx.post(self.base + "/v1/enterprises", headers=self.op(), json=body, timeout=30)
        r.raise_for_status()
        return r.json()["apiKey"]

    def checkpoint_size(self) -> int:
        return int(httpx.get(self.base + "/v1/ledger/checkpoint", headers=self.op(), timeout=30).text.split("\n")[1])


def add_server_args(p: Any) -> None:
    """``--workers`` and ``--external-regulators`` of an argparse parser (the benches that start a server)."""
    p.add_argument("--workers", type=int, default=1,
                   help="swx serve worker processes (default 1); above 1 the stand-ins run out of process")
    p.add_argument("--external-regulators", action="store_true",
                   help="run the regulator stand-ins as their own process (swx regulators serve), not mounted in swx serve")


def register_firm(server: Server, roles: tuple[str, ...] = ("ebp", "ebc")) -> str:
    """The bench firm (files the single-order messages); returns its API key."""
    return server.register({"code": FIRM_CODE, "name": FIRM_NAME, "roles": list(roles), "dxpId": FIRM_DXP})


# --- a lean HTTP/1.1 client ----------------------------------------------------------------------


def raw_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """A complete HTTP/1.1 request, built once so that sending it costs only a socket write."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection: send pre-built requests, read status and body (Content-Length only)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=2**20)

    async def call(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError):
            await self.close()
            raise
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]
