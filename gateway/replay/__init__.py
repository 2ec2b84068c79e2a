"""``swx replay``: file a sample set (docs/testers.md) against a running swx and compare what happens
with what the set expects; plain folders of CEB XML are filed as is and their outcomes reported.

The CLI calls :func:`run_replay` (exit status); code that wants the records calls :func:`replay`.
"""

from __future__ import annotations

from .manifest import ManifestError
from .records import ReplayResult
from .runner import TargetUnreachable, replay, run_replay

__all__ = ["ManifestError", "ReplayResult", "TargetUnreachable", "replay", "run_replay"]
