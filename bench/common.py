"""Shared pieces of the benchmarks: the machine, process accounting, a server under test, a lean client.

Nothing here changes swx: it starts ``swx serve`` as a subprocess (``python -m gateway.cli serve``)
on a database it may reset, and reads what the kernel says about the processes involved.
"""

from __future__ import annotations

import asyncio
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
PROTECTED_DATABASES = {"test", "test2", "swx_scratch"}


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
    """CPU used by the server, PostgreSQL, the load generator and the machine over one window."""

    server_pid: int
    start_wall: float = 0.0
    start: dict[str, float] = field(default_factory=dict)
    result: dict[str, float] = field(default_factory=dict)

    def begin(self) -> CpuWindow:
        busy, total = machine_cpu()
        self.start = {"server": proc_cpu(self.server_pid), "postgres": postgres_cpu(), "self": _self_cpu(),
                      "busy": busy, "total": total}
        self.start_wall = time.perf_counter()
        return self

    def end(self, generator_cpu: float | None = None) -> dict[str, float]:
        """Shares of the machine (1.0 = every core busy for the whole window) and CPU seconds."""
        wall = time.perf_counter() - self.start_wall
        busy, total = machine_cpu()
        cores = os.cpu_count() or 1
        used = {
            "server": proc_cpu(self.server_pid) - self.start["server"],
            "postgres": postgres_cpu() - self.start["postgres"],
            "generator": generator_cpu if generator_cpu is not None else _self_cpu() - self.start["self"],
        }
        self.result = {"wall": wall, **{f"{k}_cpu_s": v for k, v in used.items()},
                       **{f"{k}_share": v / (wall * cores) for k, v in used.items()},
                       "machine_busy_share": (busy - self.start["busy"]) / max(1e-9, total - self.start["total"])}
        self.result["other_share"] = max(0.0, self.result["machine_busy_share"] - sum(self.result[f"{k}_share"] for k in used))
        return self.result


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def cpu_line(c: dict[str, float]) -> str:
    return (f"machine busy {c['machine_busy_share']:.0%} of {os.cpu_count()} cores: server {c['server_share']:.0%}, "
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


class Server:
    """``swx serve`` in a subprocess on ``url``; ``reset`` drops the bench database's schema first."""

    def __init__(self, url: str, *, reset: bool = True, env: dict[str, str] | None = None, key_dir: str | None = None,
                 log_path: str | None = None) -> None:
        self.url = url
        self.tmp = key_dir or tempfile.mkdtemp(prefix="swx-bench-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.reset = reset
        self.log_path = log_path or os.path.join(self.tmp, "server.log")
        self.proc: subprocess.Popen | None = None

    @property
    def key_path(self) -> str:
        return os.path.join(self.tmp, "ledger.key")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def env(self) -> dict[str, str]:
        return {**os.environ, "SWX_DATABASE_URL": self.url, "SWX_OPERATOR_TOKEN": TOKEN, "SWX_LOG_LEVEL": "WARNING",
                "SWX_LEDGER_KEY_PATH": self.key_path, **self.extra_env}

    def start(self) -> Server:
        if self.reset:
            if self.url.startswith("postgresql"):
                reset_postgres(self.url)
            self.reset = False
        out = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port)],
            cwd=ROOT, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"swx serve exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"swx serve did not come up; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

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
