"""Fault injection for drills and tests: make a regulator slow, flaky or gone.

Faults apply to what the window pushes (``/messages``, ``/registrations``) and never to the admin
endpoints, so an operator can always lift them. A failed delivery is not recorded: the window must
retry it, which is the behaviour the faults exist to exercise.
"""

from __future__ import annotations

import asyncio
import random

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outage: bool = False  # every delivery answers 503
    errorRate: float = Field(0.0, ge=0.0, le=1.0)  # share of deliveries answered 500
    latencyMs: int = Field(0, ge=0, le=120_000)  # added before anything else


class FaultsPatch(BaseModel):
    """A PUT body: the fields given replace the current ones, the others stay."""

    model_config = ConfigDict(extra="forbid")

    outage: bool | None = None
    errorRate: float | None = Field(None, ge=0.0, le=1.0)
    latencyMs: int | None = Field(None, ge=0, le=120_000)


class FaultInjector:
    def __init__(self, rng: random.Random | None = None) -> None:
        self.faults = Faults()
        self._rng = rng or random.Random()
        self.injected = {"outage": 0, "error": 0}

    def update(self, patch: FaultsPatch) -> Faults:
        self.faults = self.faults.model_copy(update=patch.model_dump(exclude_none=True))
        return self.faults

    async def strike(self) -> tuple[int, str] | None:
        """Sleep the latency, then the (status, reason) to answer instead of working, or None."""
        f = self.faults
        if f.latencyMs:
            await asyncio.sleep(f.latencyMs / 1000)
        if f.outage:
            self.injected["outage"] += 1
            return 503, "injected outage"
        if f.errorRate and self._rng.random() < f.errorRate:
            self.injected["error"] += 1
            return 500, "injected error"
        return None
