"""Compiled XML schemas for CEB business messages and the DXP envelope.

The XSD files live in ``schemas/xsd`` and reference each other by relative file name only.
Each schema is compiled once per process (``functools.cache``) with no network access: the
XSD documents are parsed with entity expansion, DTD loading and network access disabled, and
every include/import is resolved inside ``XSD_DIR`` or refused.

- :func:`ceb_schema` — lxml (libxml2) schema for every CEB import message; the fast validator.
- :func:`dxp_schema` — lxml schema for the ``DxpMsg`` / ``DxpRep`` envelopes.
- :func:`ceb_xmlschema` — the same CEB files built with the pure-Python ``xmlschema``
  package, for diagnostics and tooling (paths in errors, decoding to dicts, introspection).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from lxml import etree

if TYPE_CHECKING:  # pragma: no cover
    import xmlschema

XSD_DIR: Path = Path(__file__).resolve().parent / "xsd"

CEB_ENTRY = "ceb-import.xsd"
DXP_ENTRY = "dxp-envelope.xsd"


class SchemaLoadError(RuntimeError):
    """A schema file could not be read or compiled."""


class _LocalXsdResolver(etree.Resolver):
    """Resolve schema includes/imports to files in ``XSD_DIR``; refuse anything else."""

    def resolve(self, system_url, public_id, context):
        if not system_url:
            return None
        parsed = urlparse(system_url)
        if parsed.scheme not in ("", "file"):
            raise SchemaLoadError(f"schema reference leaves the package: {system_url!r}")
        path = Path(unquote(parsed.path) if parsed.scheme == "file" else system_url)
        if not path.is_absolute():
            path = XSD_DIR / path
        path = path.resolve()
        if path.parent != XSD_DIR or not path.is_file():
            raise SchemaLoadError(f"schema reference outside {XSD_DIR}: {system_url!r}")
        return self.resolve_filename(str(path), context)


def _xsd_parser() -> etree.XMLParser:
    parser = etree.XMLParser(
        no_network=True,
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )
    parser.resolvers.add(_LocalXsdResolver())
    return parser


# libxml2 sets up its built-in schema types lazily and not thread-safely; two threads compiling at
# once (worker threads at start-up) can fail with "the given type is not a built-in type".
_compile_lock = threading.Lock()


def compile_schema(entry: str) -> etree.XMLSchema:
    """A freshly compiled schema from ``XSD_DIR / entry``, for callers that need one of their own
    (an lxml schema keeps its error log on itself, so each validating thread has its own)."""
    path = XSD_DIR / entry
    try:
        with _compile_lock:
            doc = etree.parse(str(path), _xsd_parser())
            return etree.XMLSchema(doc)
    except (OSError, etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise SchemaLoadError(f"cannot compile {path}: {exc}") from exc


@functools.cache
def ceb_schema() -> etree.XMLSchema:
    """The CEB import message schema (``ceb-import.xsd``), compiled once."""
    return compile_schema(CEB_ENTRY)


_local = threading.local()


def thread_schemas() -> tuple[etree.XMLSchema, etree.XMLSchema]:
    """This thread's compiled (CEB, DxpMsg) schemas, compiled on the thread's first use: an lxml schema
    keeps its error log on itself, so threads validating at once each need their own."""
    pair = getattr(_local, "schemas", None)
    if pair is None:
        pair = _local.schemas = (compile_schema(CEB_ENTRY), compile_schema(DXP_ENTRY))
    return pair


@functools.cache
def dxp_schema() -> etree.XMLSchema:
    """The DXP envelope schema (``dxp-envelope.xsd``), compiled once."""
    return compile_schema(DXP_ENTRY)


@functools.cache
def ceb_xmlschema() -> xmlschema.XMLSchema:
    """The CEB import schema built with the pure-Python ``xmlschema`` package, once.

    Only local resources may be read (``allow="local"``: no network; the XSD files reference
    each other inside ``XSD_DIR`` only), XML is always parsed defused (no DTDs or entities),
    and xmlschema's bundled fallback schemas are not used, so the xmldsig schema is ours
    and not the W3C one. The settings also apply to instances validated with it.
    """
    import xmlschema

    return xmlschema.XMLSchema10(
        str(XSD_DIR / CEB_ENTRY),
        base_url=str(XSD_DIR),
        allow="local",
        defuse="always",
        use_fallback=False,
    )


def thread_schema(direction: str) -> etree.XMLSchema:
    """(interim until the export schema set lands) This thread's CEB schema for ``direction``."""
    return thread_schemas()[0]
