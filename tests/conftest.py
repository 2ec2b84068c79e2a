"""Test harness: a real swx server over real HTTP, on SQLite by default or on PostgreSQL.

Set ``SWX_TEST_DATABASE_URL`` (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``) to run the
suite against PostgreSQL; the schema ``public`` of that database is dropped and migrated afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OPERATOR_TOKEN = "swx_op_test_" + "x" * 24


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_postgres(url: str) -> None:
    import asyncpg

    async def reset() -> None:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(reset())


# The regulator stand-ins, tuned for tests: short waits, quick steps.
MOCK_ENV = {"SWX_MOCK_MATCH_WAIT": "4", "SWX_MOCK_STEP_DELAY": "0.05", "SWX_MOCK_INSPECTION_DELAY": "0.3",
            "SWX_MOCK_TAX_WAIT": "10"}


@pytest.fixture(scope="session")
def port() -> int:
    return _free_port()


def scratch_database_url(settings, tmp_path: Path) -> str:
    """A fresh database for a second swx started by a test: SQLite in ``tmp_path``, or, when the suite
    runs on PostgreSQL, the database ``<test database>_scratch`` beside it (created if missing), so that
    suites run against different databases at once do not share one."""
    url = settings.database_url
    if not url.startswith("postgresql"):
        return f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
    import asyncpg

    name = url.rsplit("/", 1)[1].split("?", 1)[0] + "_scratch"

    async def create() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    scratch = url.rsplit("/", 1)[0] + "/" + name
    _reset_postgres(scratch)
    return scratch


ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Spawned:
    """A second swx, as its own ``swx serve`` process, with helpers for the processes around it."""

    url: str
    env: dict[str, str]
    log: Path
    procs: list[subprocess.Popen]

    @property
    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['SWX_OPERATOR_TOKEN']}"}

    def run(self, *args: str) -> subprocess.Popen:
        """Start ``swx ARGS…`` with this swx's settings (e.g. ``worker``)."""
        with self.log.open("ab") as out:
            p = subprocess.Popen([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT, env=self.env, stdout=out, stderr=out)
        self.procs.append(p)
        return p


@contextlib.contextmanager
def spawn_swx(settings, tmp_path: Path, **env: str) -> Iterator[Spawned]:
    """``swx serve`` in a process of its own on a scratch database; extra ``SWX_*`` settings in ``env``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    full = {
        **os.environ, "SWX_DATABASE_URL": scratch_database_url(settings, tmp_path), "SWX_PORT": str(port),
        "SWX_OPERATOR_TOKEN": "swx_op_spawned_" + "s" * 24, "SWX_LEDGER_KEY_PATH": str(tmp_path / "ledger.key"),
        "SWX_LOG_LEVEL": "WARNING", **env,
    }
    spawned = Spawned(f"http://127.0.0.1:{port}", full, tmp_path / "swx.log", [])
    serve = spawned.run("serve")
    try:
        eventually(lambda: serve.poll() is None and _healthy(spawned.url) or serve.poll() is not None, timeout=30)
        if serve.poll() is not None:
            raise RuntimeError(f"swx serve exited with {serve.returncode}: {spawned.log.read_text()[-2000:]}")
        yield spawned
    finally:
        for p in spawned.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in spawned.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, port: int):
    from gateway.config import Settings

    os.environ.update(MOCK_ENV)
    url = os.environ.get("SWX_TEST_DATABASE_URL")
    if url:
        _reset_postgres(url)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'swx.db'}"
    return Settings(
        database_url=url, operator_token=OPERATOR_TOKEN, validation_threads=2, max_body_bytes=10 * 1024 * 1024,
        ledger_key_path=tmp_path_factory.mktemp("ledger") / "ledger.key", ledger_interval=0.2,
        port=port, delivery_backoff=0.1, delivery_backoff_cap=1.0, delivery_max_attempts=12, delivery_timeout=5,
    )


@contextlib.contextmanager
def serving(app, *, port: int | None = None, lifespan: str = "on") -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a background thread; yields its base URL."""
    port = port or _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def eventually(check, timeout: float = 15.0, every: float = 0.1):
    """Poll ``check`` until it returns something truthy, and return that (what happens after an
    answer -- sequencing, delivery, verdicts -- takes a fraction of a second here)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {getattr(check, '__name__', 'a condition')}")
        time.sleep(every)


@pytest.fixture(scope="session")
def server(settings, port):
    """A real swx server in a background thread; yields its base URL."""
    from gateway.app import create_app
    from gateway.logs import configure
    from gateway.migrate import upgrade

    configure("WARNING")  # the server thread's request lines would drown pytest's output
    upgrade(settings)
    with serving(create_app(settings), port=port) as url:
        yield url


@dataclass
class Firm:
    code: str
    name: str
    key: str
    dxp_id: str
    roles: list[str]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class Swx:
    """A client of the test server with helpers to register firms and file messages."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        self.rng = random.Random()

    def register(self, roles: list[str], *, code: str | None = None, name: str | None = None) -> Firm:
        from schemas.identifiers import make_customs_code, make_uscc

        code = code or (make_uscc(self.rng) if self.rng.random() < 0.5 else make_customs_code(self.rng))
        name = name or f"测试{code[-6:]}跨境贸易有限公司"
        dxp_id = f"DXPENT{code[-10:]}"
        r = self.http.post("/v1/enterprises", json={"code": code, "name": name, "roles": roles, "dxpId": dxp_id}, headers=self.operator)
        assert r.status_code == 201, r.text
        return Firm(code, name, r.json()["apiKey"], dxp_id, roles)

    def file(self, firm: Firm, body: bytes, *, accept: str = "application/json", path: str = "/v1/filings") -> httpx.Response:
        headers = {**firm.auth, "Content-Type": "application/xml", "Accept": accept}
        return self.http.post(path, content=body, headers=headers)


@pytest.fixture(scope="session")
def swx(server) -> Swx:
    return Swx(server)


def party_of(firm: Firm):
    """The builder's view of a registered firm."""
    from schemas.builder import Party

    return Party(firm.code, firm.name, firm.dxp_id)


_seeds = iter(range(10_000, 10_000_000))


def register_parties(swx: Swx, parties) -> None:
    """Register every enterprise a builder's ``Parties`` names, each with the roles it plays."""
    for body in parties.registrations():
        r = swx.http.post("/v1/enterprises", json=body, headers=swx.operator)
        assert r.status_code in (201, 409), r.text


@pytest.fixture
def builder(swx):
    """A message builder with a seed of its own, so that every test files fresh keys and guids.

    Its ``parties()`` are registered with swx, as every enterprise a filing names must be.
    """
    from schemas.builder import MessageBuilder

    class RegisteringBuilder(MessageBuilder):
        def parties(self):
            parties = super().parties()
            register_parties(swx, parties)
            return parties

    return RegisteringBuilder(seed=next(_seeds))


@pytest.fixture(scope="module")
def filer(swx) -> Firm:
    """One firm holding every role, for tests that do not care who files."""
    return swx.register(["ebp", "ebc", "pay", "logistics", "agent", "assure", "area", "operator"])
