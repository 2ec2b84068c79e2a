"""Group commit of filings (``kit/groupcommit.py``): filings validated at about the same time are stored
in one transaction, and each is answered only after that commit.

A batch never holds two filings with the same guid or document key (a later one waits for the
next batch), so each filing of a batch is judged exactly as it would be alone.
"""

from __future__ import annotations

from kit.groupcommit import GroupCommit, Store

from ..auth import Principal
from ..metrics import INTAKE_BATCH
from .answers import Filing, FilingResult
from .validate import Checked


def filing_keys(filing: Filing) -> frozenset[str]:
    checked = filing[0]
    keys = {f"guid:{checked.guid}"} if checked.guid else set()
    if checked.mtype is not None:
        keys.update(f"{checked.mtype.kind}:{d.key_text}" for d in checked.docs)
    return frozenset(keys)


class FilingWriter(GroupCommit[Filing, FilingResult]):
    def __init__(self, store: Store, *, writers: int = 1, max_batch: int = 64) -> None:
        super().__init__(store, keys=filing_keys, writers=writers, max_batch=max_batch, name="intake",
                         observe=INTAKE_BATCH.observe)

    async def file(self, checked: Checked, principal: Principal) -> FilingResult:
        return await self.submit((checked, principal))
