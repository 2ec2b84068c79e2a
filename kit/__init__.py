"""The small shared kit: what every package of swx needs and none of them owns.

Time formats (``times``), waits that cannot swallow a cancellation (``waits``), set-based inserts
(``bulk``), the safe XML parser (``xmlsafe``), the ``DxpMsg`` envelope (``envelope``) and FastAPI
switches (``web``). The kit imports nothing of swx, so the ledger, the schemas, the adapters, the
stand-ins, the replay client and the gateway can all stand on it without leaning on each other.
"""
