"""Realistic stand-ins for the regulators (customs, inspection, tax, FX), talking to swx over HTTP only."""
