"""Regulator adapters: deliver routed messages to customs, inspection, tax and FX (see issue on routing)."""
