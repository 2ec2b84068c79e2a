"""Realistic stand-ins for the regulators (customs, inspection, tax, FX), talking to swx over HTTP only.

Each stand-in takes the window's deliveries (docs/regulators.md), decides as its regulator would and
posts its verdicts back as CEB receipts. ``create_app`` serves all four; nothing here imports ``gateway``.
"""

from mock_customs.app import create_app, create_regulator_app
from mock_customs.config import MockSettings

__all__ = ["MockSettings", "create_app", "create_regulator_app"]
