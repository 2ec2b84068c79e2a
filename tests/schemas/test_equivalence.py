"""Differential test: swx's own CEB schemas accept exactly what the official 2022-05 schemas accept.

The official XSDs and samples are read from ``../shared/reference/ceb-202205`` (never copied into
the project). The corpus is the 16 official import samples plus several hundred deterministic
mutants of them (seeded ``random.Random``): dropped / duplicated / reordered elements, values at
and beyond their length limits (ASCII and CJK), empty values, bad decimals and integers, a wrong
currency, foreign-namespace and unknown elements, broken root attributes, wrong roots, cardinality
limits and changes inside ``ds:Signature``. For every document, the official schema and ours must
give the same verdict; both error logs are shown when they do not.
"""

from __future__ import annotations

import functools

import pytest

from tests.fixtures.ceb_official import OFFICIAL_IMPORT

if not OFFICIAL_IMPORT.exists():
    pytest.skip(f"official CEB schemas not available at {OFFICIAL_IMPORT}", allow_module_level=True)

from schemas.loader import ceb_schema  # noqa: E402
from tests.fixtures.ceb_corpus import _mutants, corpus  # noqa: E402
from tests.fixtures.ceb_official import Doc, _compare, official_schema  # noqa: E402

MIN_MUTANTS = 300


@functools.cache
def _verdicts() -> dict[str, tuple[bool, bool, str]]:
    off, ours = official_schema(), ceb_schema()
    return {d.id: _compare(off, ours, d.data) for d in corpus()}


@pytest.mark.parametrize("doc", corpus(), ids=lambda d: d.id)
def test_same_verdict_as_official(doc: Doc) -> None:
    off_ok, our_ok, report = _compare(official_schema(), ceb_schema(), doc.data)
    assert off_ok == our_ok, f"verdicts differ for {doc.id}\n  mutation: {doc.description}\n{report}"


def test_corpus_size_and_mix() -> None:
    mutants = _mutants()
    assert len(mutants) >= MIN_MUTANTS, len(mutants)
    assert len({d.id for d in corpus()}) == len(corpus()), "mutant ids must be unique"
    verdicts = _verdicts()
    valid = sum(1 for d in mutants if verdicts[d.id][0])
    invalid = len(mutants) - valid
    assert valid >= 75, f"only {valid} of {len(mutants)} mutants are valid"
    assert invalid >= 75, f"only {invalid} of {len(mutants)} mutants are invalid"
    mismatches = [
        f"{d.id}: {d.description}\n{verdicts[d.id][2]}" for d in corpus() if verdicts[d.id][0] != verdicts[d.id][1]
    ]
    assert not mismatches, f"{len(mismatches)} verdict mismatches:\n" + "\n".join(mismatches)


def test_corpus_is_deterministic() -> None:
    corpus.cache_clear()
    first = [(d.id, d.data) for d in corpus()]
    corpus.cache_clear()
    assert first == [(d.id, d.data) for d in corpus()]
