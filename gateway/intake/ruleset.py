"""Which rules a document's kind gets, and running them: import's (``rules.py``) and export's
(``export_rules.py``) in one table, each kind's fields read once for all its rules.
"""

from __future__ import annotations

from schemas.catalog import MessageType
from schemas.documents import FiledDocument, field_paths, schema_fields

from .export_rules import EXPORT_RULES
from .findings import Finding
from .rules import RULES as IMPORT_RULES
from .rules import Rule

RULES: dict[str, tuple[Rule, ...]] = {**IMPORT_RULES, **EXPORT_RULES}


def _reads(rules: tuple[Rule, ...], which: str, allowed: frozenset[str] | None = None) -> tuple[tuple, dict]:
    """(name, finder) pairs of the fields ``rules`` read, and those that cannot be there (as None)."""
    names = dict.fromkeys(name for rule in rules for name in getattr(rule, which))
    absent = {name: None for name in names if allowed is not None and name not in allowed}
    return field_paths(name for name in names if name not in absent), absent


_plans: dict[tuple[str, bool], tuple[tuple, dict, tuple, dict]] = {}


def _plan(mtype: MessageType, schema_valid: bool) -> tuple[tuple, dict, tuple, dict]:
    """What the rules for ``mtype`` read from a head and from each line (see :func:`check_document`)."""
    plan = _plans.get((mtype.kind, schema_valid))  # by kind: hashing a MessageType hashes all its fields
    if plan is None:
        rules = RULES[mtype.kind]
        head_allowed, line_allowed = schema_fields(mtype) if schema_valid else (None, None)
        plan = (*_reads(rules, "head_fields", head_allowed), *_reads(rules, "line_fields", line_allowed))
        _plans[(mtype.kind, schema_valid)] = plan
    return plan


def check_document(doc: FiledDocument, schema_valid: bool = False) -> list[Finding]:
    """The rule findings on ``doc``.

    ``schema_valid``: the whole message passed the CEB schema and carries no xsi:type, so a field its
    schema does not allow in a head or line is not there and need not be looked for.
    """
    findings: list[Finding] = []
    mtype = doc.mtype
    head_reads, head_absent, line_reads, line_absent = _plan(mtype, schema_valid)
    head = doc.head.read(head_reads, head_absent)
    lines = [li.read(line_reads, line_absent) for li in doc.lines]
    for rule in RULES[mtype.kind]:
        rule(doc, head, lines, findings)
    return findings
