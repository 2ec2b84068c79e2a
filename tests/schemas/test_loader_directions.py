"""The loader compiles each direction's CEB schema on its own: once per process, and once per validating
thread (an lxml schema keeps its error log on itself)."""

from __future__ import annotations

import threading

import pytest

from schemas.loader import (
    ceb_schema,
    ceb_xmlschema,
    direction_of_root,
    export_schema,
    schema_for_root,
    thread_schema,
    thread_schemas,
)


def test_process_wide_schemas_compiled_once() -> None:
    assert export_schema() is export_schema() is ceb_schema("export")
    assert ceb_schema() is ceb_schema("import")
    assert export_schema() is not ceb_schema()
    assert ceb_xmlschema("export") is ceb_xmlschema("export")
    assert ceb_xmlschema() is ceb_xmlschema("import")


def test_thread_schema_per_thread_and_direction() -> None:
    assert thread_schema("import") is thread_schemas()[0]
    mine = thread_schema("export")
    assert mine is thread_schema("export") and mine is not export_schema()
    theirs: list[object] = []
    t = threading.Thread(target=lambda: theirs.append(thread_schema("export")))
    t.start()
    t.join()
    assert theirs[0] is not mine
    with pytest.raises(ValueError):
        thread_schema("transit")


def test_roots_by_direction() -> None:
    assert direction_of_root("CEB603Message") == "export"
    assert direction_of_root("CEB792Message") == "export"
    assert direction_of_root("CEB621Message") == "import"
    assert direction_of_root("OrderHead") == "import"  # declared by both: import, as before
    assert direction_of_root("CEB999Message") == "import"
    assert schema_for_root("CEB304Message") is export_schema()
