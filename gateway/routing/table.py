"""The routing table: which regulators receive each message type, and how each regulator is reached.

Read once at start-up from ``gateway/routing/routes.toml`` or the file ``SWX_ROUTES`` names; a table
naming an unknown message type, regulator, mode or adapter stops the service from starting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from adapters import Endpoint
from schemas.catalog import FILED, SUMMARY_RESULT_CODE

from ..auth import REGULATORS
from ..tomlfile import read_toml

DEFAULT_ROUTES = Path(__file__).with_name("routes.toml")
ENV_VAR = "SWX_ROUTES"


class DeliveryMode(StrEnum):
    PUSH = "push"  # the dispatcher sends each delivery through the regulator's adapter
    PULL = "pull"  # the regulator reads its inbox and acknowledges


MODES = tuple(DeliveryMode)


class RoutesError(ValueError):
    """The routing table cannot be used."""


@dataclass(frozen=True, slots=True)
class RegulatorRoute:
    """How one regulator is reached: pushed through an adapter, or pulled from its inbox."""

    name: str
    mode: DeliveryMode
    adapter: str  # entry-point name in group "swx.adapters"
    url: str  # "" = at the window's regulators url (the stand-ins)
    receiver_id: str

    def endpoint(self, regulators_url: str) -> Endpoint:
        """The adapter's endpoint: the route's url, else ``{regulators_url}/{name}`` (the stand-ins)."""
        return Endpoint(self.name, self.url or f"{regulators_url.rstrip('/')}/{self.name}", self.receiver_id)


@dataclass(frozen=True, slots=True)
class RoutingTable:
    messages: dict[str, tuple[str, ...]]  # message type code -> regulators
    regulators: dict[str, RegulatorRoute]
    source: str

    def for_message(self, code: str) -> tuple[str, ...]:
        return self.messages.get(code, ())


def parse_routes(data: dict[str, Any], source: str, adapters: set[str] | None = None) -> RoutingTable:
    def fail(msg: str) -> RoutesError:
        return RoutesError(f"routing table {source}: {msg}")

    extra = set(data) - {"messages", "regulators"}
    if extra:
        raise fail(f"unknown section(s) {', '.join(sorted(extra))}; sections are [messages] and [regulators.NAME]")
    messages: dict[str, tuple[str, ...]] = {}
    for code, names in (data.get("messages") or {}).items():
        if code not in FILED and code != SUMMARY_RESULT_CODE:
            raise fail(f"[messages] names message type {code!r}; routed types are {', '.join(FILED)}, {SUMMARY_RESULT_CODE}")
        if not isinstance(names, list) or not all(n in REGULATORS for n in names):
            raise fail(f"[messages] {code} must list regulators among {', '.join(REGULATORS)}, got {names!r}")
        messages[code] = tuple(dict.fromkeys(names))
    regulators: dict[str, RegulatorRoute] = {}
    for name, table in (data.get("regulators") or {}).items():
        if name not in REGULATORS:
            raise fail(f"unknown regulator [regulators.{name}]; regulators are {', '.join(REGULATORS)}")
        unknown = set(table) - {"mode", "adapter", "url", "receiver_id"}
        if unknown:
            raise fail(f"[regulators.{name}] has unknown key(s) {', '.join(sorted(unknown))}")
        mode = table.get("mode", "push")
        if mode not in MODES:
            raise fail(f"[regulators.{name}] mode must be push or pull, not {mode!r}")
        adapter = table.get("adapter", "http")
        if adapters is not None and mode == DeliveryMode.PUSH and adapter not in adapters:
            raise fail(f"[regulators.{name}] adapter {adapter!r} is not installed; installed: {', '.join(sorted(adapters))}")
        regulators[name] = RegulatorRoute(
            name, DeliveryMode(mode), adapter, str(table.get("url", "")), str(table.get("receiver_id", "DXPSWX0000000002"))
        )
    for code, names in messages.items():
        for n in names:
            if n not in regulators:
                raise fail(f"[messages] {code} routes to {n}, which has no [regulators.{n}] section")
    return RoutingTable(messages, regulators, source)


def load_routes(path: str | os.PathLike[str] | None = None, adapters: set[str] | None = None) -> RoutingTable:
    data, source = read_toml(path, env_var=ENV_VAR, default=DEFAULT_ROUTES, what="routing table", error=RoutesError)
    return parse_routes(data, source, adapters)
