"""swx gateway: the HTTP face of the single window (intake, registry, receipts)."""

__version__ = "0.1.0"
