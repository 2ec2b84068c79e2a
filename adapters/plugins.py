"""Finding adapters: the entry-point group ``swx.adapters``, with the built-in ones as a fallback."""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

GROUP = "swx.adapters"
BUILT_IN = {"http": "adapters.http:HttpAdapter"}  # also declared in pyproject.toml


def _targets() -> dict[str, str]:
    found = dict(BUILT_IN)
    found.update({ep.name: ep.value for ep in entry_points(group=GROUP)})
    return found


def adapter_names() -> set[str]:
    return set(_targets())


def load_adapter(name: str) -> Any:
    """The adapter class registered under ``name``."""
    target = _targets().get(name)
    if target is None:
        raise LookupError(f"no adapter {name!r}; installed: {', '.join(sorted(_targets()))}")
    module, _, attr = target.partition(":")
    return getattr(import_module(module), attr)
