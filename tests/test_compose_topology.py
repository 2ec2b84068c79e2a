"""The deployment in ``docker-compose.yml`` works as written.

There is no Docker daemon here, so the test reads the compose file (and the image's ``ENV`` from the
``Dockerfile``) and starts exactly each service's command and environment as local processes, in
``depends_on`` order, each waited for by its own health check: the ``postgres`` service is the local
PostgreSQL (a scratch database), service names and ports are mapped to local ports, volumes to
folders. Then one declaration is released through them, and the ledger the processes shared verifies.
Anything the compose file gets wrong — a command, a variable, a port, a health check — fails here.
PostgreSQL only: the compose deployment runs on it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from schemas.builder import MessageBuilder
from tests.fixtures.declarations import file_clean, state_of
from tests.fixtures.paths import ROOT
from tests.fixtures.processes import all_deliveries, register_firms, stop
from tests.fixtures.server import MOCK_ENV, _free_port, eventually, scratch_database_url

COMPOSE = ROOT / "docker-compose.yml"
SECRETS = {"SWX_OPERATOR_TOKEN": "swx_op_compose_" + "c" * 24, "SWX_DELIVERY_TOKEN": "swx_dl_compose_" + "d" * 24}
VARIABLE = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")

pytestmark = pytest.mark.skipif(not os.environ.get("SWX_TEST_DATABASE_URL", "").startswith("postgresql"),
                                reason="the compose deployment runs on PostgreSQL (set SWX_TEST_DATABASE_URL)")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}``."""
    def one(m: re.Match) -> str:
        name, op, arg = m.groups()
        if env.get(name):
            return env[name]
        if op == "?":
            raise AssertionError(f"docker-compose.yml requires {name}: {arg}")
        return arg or ""

    return VARIABLE.sub(one, value)


def image_env() -> dict[str, str]:
    """The ``ENV`` lines of the Dockerfile (the image every swx service runs)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    env = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(item.split("=", 1) for item in shlex.split(line[4:]))
    return env


class Topology:
    """The compose services as local processes: names, ports and volumes mapped."""

    def __init__(self, compose: dict, tmp_path: Path, database_url: str) -> None:
        self.services = compose["services"]
        self.ports: dict[str, dict[str, str]] = {}  # service -> container port -> local port
        for name, svc in self.services.items():
            declared = [str(p).split(":")[-1] for p in svc.get("ports", [])] + [str(p) for p in svc.get("expose", [])]
            self.ports[name] = {p: str(_free_port()) for p in declared}
        pg = self.services["postgres"]["environment"]
        # the postgres service's own address, as the others spell it, becomes the scratch database
        local = database_url.split("://", 1)[1]
        self.replacements = {f"{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}": local}
        for name, ports in self.ports.items():
            for inside, outside in ports.items():
                self.replacements[f"{name}:{inside}"] = f"127.0.0.1:{outside}"
        self.volumes = tmp_path / "volumes"
        self.tmp_path = tmp_path

    def _local(self, name: str, value: str) -> str:
        for old, new in self.replacements.items():
            value = value.replace(old, new)
        for inside, outside in self.ports[name].items():  # the service's own port, as it binds and checks it
            value = re.sub(rf"(?<![\d:]){inside}(?!\d)", outside, value.replace(f"127.0.0.1:{inside}", f"127.0.0.1:{outside}"))
        for mount in self.services[name].get("volumes", []):
            volume, path = mount.split(":", 1)
            value = value.replace(path, str(self.volumes / volume))
        return value

    def env(self, name: str) -> dict[str, str]:
        svc = self.services[name]
        env = {**os.environ, **MOCK_ENV, "SWX_LOG_LEVEL": "WARNING"}
        for key in [k for k in env if k.startswith("SWX_") and k not in MOCK_ENV and k != "SWX_LOG_LEVEL"]:
            del env[key]  # only what the compose file (and the image) says
        declared = image_env() if "build" in svc or str(svc.get("image", "")).startswith("swx") else {}
        declared.update({k: interpolate(str(v), SECRETS) for k, v in (svc.get("environment") or {}).items()})
        return {**env, **{k: self._local(name, v) for k, v in declared.items()}}

    def argv(self, name: str, command: list[str]) -> list[str]:
        argv = [self._local(name, interpolate(str(c), SECRETS)) for c in command]
        if argv[0] == "swx":
            return [sys.executable, "-m", "gateway.cli", *argv[1:]]
        if argv[0] == "python":
            return [sys.executable, *argv[1:]]
        return argv

    def order(self) -> list[str]:
        """The services in ``depends_on`` order (postgres first)."""
        done: list[str] = []

        def visit(name: str) -> None:
            if name not in done:
                for dep in self.services[name].get("depends_on") or {}:
                    visit(dep)
                done.append(name)

        for name in self.services:
            visit(name)
        return done

    def healthy(self, name: str) -> bool:
        check = self.services[name].get("healthcheck")
        if not check:
            return True
        test = check["test"]
        assert test[0] == "CMD", f"{name}: health check {test} (the local run knows CMD only)"
        return subprocess.run(self.argv(name, test[1:]), env=self.env(name), capture_output=True, timeout=10).returncode == 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{next(iter(self.ports[name].values()))}"


def test_the_compose_services_release_a_declaration(settings, tmp_path):
    compose = yaml.safe_load(COMPOSE.read_text())
    assert set(compose["services"]) >= {"postgres", "swx", "worker", "regulators"}
    assert compose["services"]["postgres"]["volumes"] and compose["services"]["swx"]["volumes"], "database and ledger volumes"
    topology = Topology(compose, tmp_path, scratch_database_url(settings, tmp_path))
    procs: list[subprocess.Popen] = []
    log = tmp_path / "compose.log"
    try:
        with log.open("ab") as out:
            for name in topology.order():
                if name == "postgres":  # the local PostgreSQL stands in for the image
                    continue
                proc = subprocess.Popen(topology.argv(name, topology.services[name]["command"]), cwd=tmp_path,
                                        env=topology.env(name), stdout=out, stderr=out)
                procs.append(proc)

                def up(name=name, proc=proc) -> bool:
                    assert proc.poll() is None, f"{name} exited with {proc.returncode}: {log.read_text()[-3000:]}"
                    return topology.healthy(name)

                eventually(up, timeout=90, every=0.5)

        window = topology.url("swx")
        operator = {"Authorization": f"Bearer {SECRETS['SWX_OPERATOR_TOKEN']}"}
        http = httpx.Client(base_url=window, timeout=30)
        builder = MessageBuilder(seed=713)
        parties = builder.parties()
        order, guids = file_clean(http, register_firms(http, operator, parties), builder, parties)

        def released() -> dict | None:
            state = state_of(http, operator, order)
            return state if state and state["state"] == "released" else None

        state = eventually(released, timeout=90, every=0.25)
        assert state["documents"]["inventory"]["verdicts"]["customs"]["status"] == "800"
        ds = eventually(lambda: (ds := all_deliveries(http, operator)) and all(
            d["state"] in ("delivered", "acknowledged") for d in ds) and ds, timeout=30)
        assert len([d for d in ds if d["messageGuid"] in guids]) == 4 + 1 + 2
        customs = httpx.get(f"{topology.url('regulators')}/customs/_admin/state", headers=operator, timeout=10).json()
        assert customs["received"]["documents"] == 4, customs["received"]
        # the ledger the window's workers and the worker service sequenced, checked with the window's settings
        verify = subprocess.run([sys.executable, "-m", "gateway.cli", "ledger", "verify"], cwd=tmp_path,
                                env=topology.env("swx"), capture_output=True, text=True, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        http.close()
    finally:
        stop(procs)
