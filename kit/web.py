"""FastAPI options every swx application takes.

FastAPI's own OpenTelemetry hooks look the providers up (and read the environment) on every request;
swx exports Prometheus metrics instead. Older FastAPI releases have no such hooks.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI

NO_OTEL: dict = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}
)
