"""``swx replay``: file a sample set (docs/testers.md) against a running swx and compare what happens
with what the set expects; plain folders of CEB XML are filed as is and their outcomes reported.

The CLI calls :func:`run_replay` (exit status); code that wants the records calls :func:`replay`.

A package of its own, not part of the gateway: it talks to any swx over HTTP only and imports nothing of
``gateway`` (the schemas and ``kit`` it does use), and it is the only user of ``rich``, which comes with the
``tools`` extra (``pip install -e '.[tools]'``) rather than with every install of the service.
"""

from __future__ import annotations

from .manifest import ManifestError
from .records import ReplayResult
from .runner import TargetUnreachable, replay, run_replay

__all__ = ["ManifestError", "ReplayResult", "TargetUnreachable", "replay", "run_replay"]
