"""FastAPI's OpenTelemetry hooks read the environment on every request; swx's apps need none, so they are switched off."""

from __future__ import annotations

import inspect

from fastapi import FastAPI

# Keyword arguments for ``FastAPI(...)``: telemetry off where FastAPI has the switch, nothing where it has not.
NO_OTEL: dict = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}
)
