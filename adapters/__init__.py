"""Regulator adapters: how a routed delivery reaches a regulator.

An adapter is built as ``Adapter(endpoint, settings)``, takes one :class:`~adapters.base.Outgoing`
and answers a :class:`~adapters.base.DeliveryResult`; it knows nothing of the database, the outbox or
retries (the dispatcher owns those). Adapters are found through the entry-point group
``swx.adapters`` (``http`` is built in; ``adapters/plugins.py``), so a deployment can add its own — a
message queue, a file drop, a national gateway client — by installing a package.
"""

from .base import Adapter, AdapterSettings, DeliveryResult, Endpoint, Outgoing
from .plugins import adapter_names, load_adapter

__all__ = ["Adapter", "AdapterSettings", "DeliveryResult", "Endpoint", "Outgoing", "adapter_names", "load_adapter"]
