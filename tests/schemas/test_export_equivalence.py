"""Differential test, export half: swx's own export schemas (``ceb-export.xsd``) accept exactly what the
official 2022-05 ``export.xsd`` accepts.

The corpus (tests/fixtures/ceb_corpus.py, the same generator as the import test's): one builder-made message
of every export type (``builder_export_bases``) and their mutants; the 23 official export
samples as they are (13 valid, 10 invalid under both schemas, CEB.md §8.6), the 10 invalid ones fixed
(the duplicate BaseTransfer removed; CEB214's root renamed and its undeclared appSenderId removed;
CEB792's missing gseqno added), valid under both, and thousands of deterministic mutants of every valid
or fixed sample: dropped, duplicated, reordered, foreign and unknown elements, values at and beyond each
field's length, digits, int range and whitespace collapse (ASCII, CJK, outside the BMP), fixed and default
values, line and node counts at and beyond their maximum, ds:Signature moved around ExtendMessage and
altered inside, broken root attributes and wrong roots. Every verdict must agree.

The reference is read from ``../shared/reference/ceb-202205`` (never copied in); without it the test skips.
"""

from __future__ import annotations

import functools
import io

import pytest
from lxml import etree

from tests.fixtures.ceb_official import OFFICIAL_EXPORT

if not OFFICIAL_EXPORT.exists():
    pytest.skip(f"official CEB export schema not available at {OFFICIAL_EXPORT}", allow_module_level=True)

from schemas.loader import export_schema, schema_for_root
from tests.fixtures.ceb_corpus import _mutants, builder_export_bases, export_corpus, fixed_export_samples
from tests.fixtures.ceb_official import Doc, _compare, _parser, official_schema, samples

MIN_MUTANTS = 600
OFFICIAL_SAMPLES, OFFICIAL_VALID, OFFICIAL_INVALID = 23, 13, 10


@functools.cache
def _verdicts() -> dict[str, tuple[bool, bool, str]]:
    off, ours = official_schema("export"), export_schema()
    return {d.id: _compare(off, ours, d.data) for d in export_corpus(builder_export_bases())}


def _valid(schema: etree.XMLSchema, data: bytes) -> bool:
    return schema.validate(etree.parse(io.BytesIO(data), _parser()))


def test_official_samples_same_verdicts() -> None:
    docs = samples("export")
    assert len(docs) == OFFICIAL_SAMPLES
    off = {stem: _valid(official_schema("export"), data) for stem, data in docs.items()}
    ours = {stem: _valid(export_schema(), data) for stem, data in docs.items()}
    assert ours == off
    valid = sorted(stem for stem, ok in off.items() if ok)
    print(f"\nexport samples: {len(valid)} valid, {len(docs) - len(valid)} invalid under both schemas")
    assert len(valid) == OFFICIAL_VALID
    assert len(docs) - len(valid) == OFFICIAL_INVALID


def test_fixed_samples_valid_under_both() -> None:
    fixed = fixed_export_samples()
    assert len(fixed) == OFFICIAL_INVALID
    for stem, (what, data) in fixed.items():
        assert _valid(official_schema("export"), data), f"{stem} ({what}) still invalid under the official schema"
        assert _valid(export_schema(), data), f"{stem} ({what}) still invalid under ours:\n{export_schema().error_log}"


def test_export_roots_pick_the_export_schema() -> None:
    for stem in samples("export"):
        if stem != "CEB214Message":  # its sample root is the bare CEB214 (§8.6)
            assert schema_for_root(stem) is export_schema(), stem
    assert schema_for_root("CEB621Message") is not export_schema()


@pytest.mark.parametrize("doc", export_corpus(builder_export_bases()), ids=lambda d: d.id)
def test_same_verdict_as_official(doc: Doc) -> None:
    off_ok, our_ok, report = _verdicts()[doc.id]
    assert off_ok == our_ok, f"verdicts differ for {doc.id}\n  mutation: {doc.description}\n{report}"


def test_corpus_size_and_mix() -> None:
    docs = export_corpus(builder_export_bases())
    built = [d for d in _mutants(docs) if d.id.startswith("builder.")]
    assert len(built) >= 300, f"only {len(built)} mutants of builder-made messages"
    mutants = _mutants(docs)
    assert len({d.id for d in docs}) == len(docs), "ids must be unique"
    verdicts = _verdicts()
    valid = sum(1 for d in mutants if verdicts[d.id][0])
    invalid = len(mutants) - valid
    mismatches = [f"{d.id}: {d.description}\n{verdicts[d.id][2]}" for d in docs if verdicts[d.id][0] != verdicts[d.id][1]]
    print(f"\nexport corpus: {len(docs)} documents, {len(mutants)} mutants ({valid} valid, {invalid} invalid), "
          f"{len(mismatches)} verdict mismatches")
    assert len(mutants) >= MIN_MUTANTS, len(mutants)
    assert valid >= 150, f"only {valid} of {len(mutants)} mutants are valid"
    assert invalid >= 150, f"only {invalid} of {len(mutants)} mutants are invalid"
    assert not mismatches, f"{len(mismatches)} verdict mismatches:\n" + "\n".join(mismatches[:20])


def test_extra_bases_join_the_corpus() -> None:
    """Builder-made messages (bytes) become bases of their own mutants, ids unique."""
    base = samples("export")["CEB304Message"]
    docs = export_corpus((("extra.CEB304", base),))
    extra = [d for d in docs if d.id.startswith("extra.CEB304-")]
    assert len(extra) > 20
    assert len({d.id for d in docs}) == len(docs)


def test_corpus_is_deterministic() -> None:
    export_corpus.cache_clear()
    first = [(d.id, d.data) for d in export_corpus()]
    export_corpus.cache_clear()
    assert first == [(d.id, d.data) for d in export_corpus()]


def test_global_elements_match_official() -> None:
    """Same global elements in the ceb namespace (wrappers such as Order and Arrival are global on export)."""
    from schemas.loader import ceb_xmlschema
    from tests.fixtures.ceb_official import CEB, XS, _c

    official = {e.get("name") for e in etree.parse(str(OFFICIAL_EXPORT), _parser()).getroot().iterchildren(_c(XS, "element"))}
    ours = {q.localname for name in ceb_xmlschema("export").maps.elements if (q := etree.QName(name)).namespace == CEB}
    assert ours == official


def test_fixed_samples_valid_under_xmlschema_build() -> None:
    from schemas.loader import ceb_xmlschema

    xs = ceb_xmlschema("export")
    for stem, data in {**{s: d for s, (_, d) in fixed_export_samples().items()}}.items():
        errors = list(xs.iter_errors(etree.parse(io.BytesIO(data), _parser())))
        assert not errors, f"{stem}: {errors[0]}"


def test_export_entry_includes_no_import_family() -> None:
    from schemas.loader import XSD_DIR
    from tests.fixtures.ceb_official import XS, _c

    seen, todo = set(), ["ceb-export.xsd"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        root = etree.parse(str(XSD_DIR / name), _parser()).getroot()
        todo += [i.get("schemaLocation") for i in root.iterchildren(_c(XS, "include"))]
    assert seen <= {"ceb-export.xsd", "ceb-export-common.xsd", "ceb-shared.xsd", "ceb-types.xsd"} | {
        p.name for p in XSD_DIR.glob("ceb-export-*.xsd")
    }, seen
