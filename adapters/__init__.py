"""Regulator adapters: how a routed delivery reaches a regulator.

An adapter takes one :class:`~adapters.base.Outgoing` and answers a :class:`~adapters.base.Outcome`;
it knows nothing of the database, the outbox or retries (the dispatcher owns those). Adapters are
found through the entry-point group ``swx.adapters`` (``http`` is built in), so a deployment can add
its own — a message queue, a file drop, a national gateway client — by installing a package.
"""

from .base import Adapter, Outcome, Outgoing
from .registry import adapter_names, load_adapter

__all__ = ["Adapter", "Outcome", "Outgoing", "adapter_names", "load_adapter"]
