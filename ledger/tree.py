"""Reading the stored tree: complete-subtree hashes from ``ledger_nodes`` by ``(level, idx)``.

Both the proofs (``log``) and the sequencer (the right edge it continues from) read nodes this way;
it lives apart from both so that ``log`` may build on ``sequencer`` without the sequencer importing
``log`` back.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from .merkle import NodeId
from .store import nodes


async def fetch_nodes(session: AsyncSession, wanted: Iterable[NodeId]) -> dict[NodeId, bytes]:
    """Complete-subtree hashes for ``wanted`` in one query (missing ones are simply absent).

    The statement is a disjunction of primary-key point lookups, written as text so that building it
    costs next to nothing; its shape depends only on the number of nodes, so it is cached/prepared.
    """
    ids = sorted(set(wanted))
    if not ids:
        return {}
    params: dict[str, int] = {}
    for n, (lv, ix) in enumerate(ids):
        params[f"l{n}"] = lv
        params[f"i{n}"] = ix
    res = await session.execute(_node_query(len(ids)), params)
    return {(lv, ix): bytes(h) for lv, ix, h in res}


@lru_cache(maxsize=256)
def _node_query(count: int) -> TextClause:
    where = " OR ".join(f"(level = :l{n} AND idx = :i{n})" for n in range(count))
    return text(f"SELECT level, idx, hash FROM {nodes.name} WHERE {where}").columns(nodes.c.level, nodes.c.idx, nodes.c.hash)
