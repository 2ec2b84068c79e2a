"""Sample sets for testers: realistic CEB filings of whole declarations, some with faults, and what
swx and the regulators should make of each (docs/testers.md).

``generate(out, declarations=100, seed=1, invalid_ratio=0.1)`` writes a set and returns a
:class:`SampleSummary`. The fault kinds are listed in :data:`KINDS` (schemas/samples/faults.py).
"""

from .faults import BY_NAME, KINDS, FaultKind
from .generator import SampleSummary, command_line, generate

__all__ = ["BY_NAME", "KINDS", "FaultKind", "SampleSummary", "command_line", "generate"]
