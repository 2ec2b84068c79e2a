"""The official import samples are valid under swx's own CEB schemas, which hold the same global
elements as the official import.xsd and reference nothing outside ``schemas/xsd``."""

from __future__ import annotations

import io

import pytest
from lxml import etree

from tests.fixtures.ceb_official import OFFICIAL_IMPORT

if not OFFICIAL_IMPORT.exists():
    pytest.skip(f"official CEB schemas not available at {OFFICIAL_IMPORT}", allow_module_level=True)

from schemas.loader import XSD_DIR, ceb_schema, ceb_xmlschema, dxp_schema  # noqa: E402
from tests.fixtures.ceb_official import CEB, XS, _c, _parser, samples  # noqa: E402


@pytest.mark.parametrize("stem", sorted(samples()))
def test_official_sample_valid_under_ours(stem: str) -> None:
    schema = ceb_schema()
    ok = schema.validate(etree.parse(io.BytesIO(samples()[stem]), _parser()))
    assert ok, f"{stem} rejected by swx schema:\n{schema.error_log}"


def test_official_samples_valid_under_xmlschema_build() -> None:
    xs = ceb_xmlschema()
    for stem, data in samples().items():
        errors = list(xs.iter_errors(etree.parse(io.BytesIO(data), _parser())))
        assert not errors, f"{stem}: {errors[0]}"


def test_schemas_compiled_once() -> None:
    assert ceb_schema() is ceb_schema()
    assert dxp_schema() is dxp_schema()
    assert ceb_xmlschema() is ceb_xmlschema()


def test_global_elements_match_official() -> None:
    """Same set of global elements in the ceb namespace, so the same documents roots validate."""
    official = {
        e.get("name")
        for e in etree.parse(str(OFFICIAL_IMPORT), _parser()).getroot().iterchildren(_c(XS, "element"))
    }
    ours = {
        local
        for name in ceb_xmlschema().maps.elements
        if (q := etree.QName(name)).namespace == CEB and (local := q.localname)
    }
    assert ours == official


def test_schema_files_are_self_contained() -> None:
    names = sorted(p.name for p in XSD_DIR.glob("*.xsd"))
    for name in names:
        root = etree.parse(str(XSD_DIR / name), _parser()).getroot()
        assert root.getroottree().docinfo.internalDTD is None, name
        for ref in root.iter(_c(XS, "include"), _c(XS, "import")):
            loc = ref.get("schemaLocation")
            assert loc in names, f"{name} references {loc!r} outside schemas/xsd"
