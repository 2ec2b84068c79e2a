"""Retry schedule: exponential back-off with full jitter (so that retries after an outage spread out)."""

from __future__ import annotations

import random


def backoff(attempt: int, *, base: float = 0.5, cap: float = 300.0, rng: random.Random | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1): uniform in
    [0, min(cap, base · 2^(attempt-1))], never less than a tenth of ``base``."""
    ceiling = min(cap, base * 2 ** min(max(0, attempt - 1), 60))  # bounded: no overflow after hours of outage
    return max(base / 10, (rng or random).uniform(0, ceiling))
