"""The sharing policy: which fields of a registration each regulator may see.

Read from ``gateway/enterprises/sharing.toml`` or the file ``SWX_SHARING_POLICY`` names, once, at
start-up; a policy naming an unknown regulator or field stops the service from starting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..auth import REGULATORS
from ..tomlfile import read_toml
from .record import FIELDS, IDENTITY, METADATA

DEFAULT_POLICY = Path(__file__).with_name("sharing.toml")
ENV_VAR = "SWX_SHARING_POLICY"
SHORTHANDS: dict[str, tuple[str, ...]] = {"identity": IDENTITY, "validity": ("validFrom", "validTo"), "*": FIELDS}


class PolicyError(ValueError):
    """The sharing policy file cannot be used."""


@dataclass(frozen=True, slots=True)
class SharingPolicy:
    views: dict[str, tuple[str, ...]]  # regulator -> record fields it may see, in record order
    source: str

    @property
    def regulators(self) -> tuple[str, ...]:
        """The regulators the policy names: each new version is shared with them."""
        return tuple(r for r in REGULATORS if r in self.views)

    def fields_for(self, regulator: str) -> tuple[str, ...] | None:
        """The record fields ``regulator`` may see, or None when the policy shares nothing with it."""
        return self.views.get(regulator)

    def view(self, regulator: str, record: dict, *, code: str, version: int, status: str) -> dict | None:
        """The part of ``record`` that ``regulator`` may see, with the metadata every view carries."""
        fields = self.views.get(regulator)
        if fields is None:
            return None
        return {"code": code, "version": version, "status": status, **{f: record.get(f) for f in fields}}


def parse_policy(data: dict[str, Any], source: str) -> SharingPolicy:
    views: dict[str, tuple[str, ...]] = {}
    for regulator, table in data.items():
        if regulator not in REGULATORS:
            raise PolicyError(f"sharing policy {source}: unknown regulator [{regulator}]; regulators are {', '.join(REGULATORS)}")
        if not isinstance(table, dict):
            raise PolicyError(f"sharing policy {source}: [{regulator}] must be a table with a 'fields' list")
        extra = set(table) - {"fields", "description"}
        if extra:
            raise PolicyError(f"sharing policy {source}: [{regulator}] has unknown key(s) {', '.join(sorted(extra))}; only 'fields' is read")
        names = table.get("fields")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise PolicyError(f"sharing policy {source}: [{regulator}] needs fields = [\"…\", …], a list of field names")
        chosen: set[str] = set()
        for name in names:
            if name in SHORTHANDS:
                chosen.update(SHORTHANDS[name])
            elif name in FIELDS:
                chosen.add(name)
            elif name in METADATA:
                pass  # carried by every view anyway
            else:
                raise PolicyError(
                    f"sharing policy {source}: [{regulator}] names unknown field {name!r}; fields are "
                    f"{', '.join(FIELDS)}, shorthands {', '.join(SHORTHANDS)}, and {', '.join(METADATA)} (always shared)"
                )
        views[regulator] = tuple(f for f in FIELDS if f in chosen)
    return SharingPolicy(views, source)


def load_policy(path: str | os.PathLike[str] | None = None) -> SharingPolicy:
    """The policy in ``path``, else in ``$SWX_SHARING_POLICY``, else the default ``sharing.toml``."""
    data, source = read_toml(path, env_var=ENV_VAR, default=DEFAULT_POLICY, what="sharing policy", error=PolicyError)
    return parse_policy(data, source)


def policy_of(app: Any) -> SharingPolicy:
    """The application's policy: loaded by ``create_app`` at start-up, else now."""
    policy = getattr(app.state, "sharing_policy", None)
    if policy is None:
        policy = app.state.sharing_policy = load_policy()
    return policy
