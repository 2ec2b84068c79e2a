"""The document view reads export messages from the export schema set: the fields a head and a line may
have, and how deep a valid message can be, are the export ones (import keeps its own)."""

from __future__ import annotations

from schemas.catalog import EXPORT, FILED
from schemas.documents import schema_depth, schema_fields


def test_every_export_type_is_plain_enough() -> None:
    for mtype in EXPORT.values():
        head, lines = schema_fields(mtype)
        assert head is not None and lines is not None, mtype.code
        depth, _ = schema_depth(mtype)
        assert depth is not None, mtype.code
        assert set(mtype.key) <= head, (mtype.code, set(mtype.key) - head)


def test_same_names_other_content() -> None:
    export_head, export_lines = schema_fields(EXPORT["303"])
    import_head, import_lines = schema_fields(FILED["311"])
    assert "buyerIdNumber" in import_head and "buyerIdNumber" not in export_head
    assert "country" in import_lines and "country" not in export_lines
    inv_head, _ = schema_fields(EXPORT["603"])
    assert {"statisticsFlag", "POD", "fFlag", "iFlag"} <= inv_head


def test_flat_and_lineless_export_types() -> None:
    assert schema_fields(EXPORT["505"])[1] == frozenset()  # Logistics stands alone on export
    assert "orderNo" not in schema_fields(EXPORT["505"])[0]
    assert schema_fields(EXPORT["701"])[1] == frozenset({"invtNo"})
