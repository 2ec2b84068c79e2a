"""Prometheus metrics of the gateway."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

FILINGS = Counter(
    "swx_filings_total", "Filings received, by message type and outcome", ["message_type", "outcome"], registry=REGISTRY
)
REQUEST_SECONDS = Histogram(
    "swx_request_seconds",
    "HTTP request latency by route",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
INTAKE_BATCH = Histogram(
    "swx_intake_batch_filings",
    "Filings stored per transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
    registry=REGISTRY,
)
RECEIPT_BATCH = Histogram(
    "swx_receipt_batch_messages",
    "Regulators' receipt messages stored per transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
