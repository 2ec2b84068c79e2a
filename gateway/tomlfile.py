"""Reading the service's TOML files (sharing policy, routing table) with errors that say what to do."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any


def read_toml(
    path: str | os.PathLike[str] | None, *, env_var: str, default: Path, what: str, error: type[Exception]
) -> tuple[dict[str, Any], str]:
    """The table in ``path``, else in ``$env_var``, else in ``default``; and which file it was."""
    chosen = Path(path or os.environ.get(env_var) or default)
    try:
        with chosen.open("rb") as f:
            return tomllib.load(f), str(chosen)
    except FileNotFoundError:
        raise error(f"{what} {chosen}: no such file (set {env_var} to an existing file)") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {chosen}: not valid TOML: {exc}") from None
