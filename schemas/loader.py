"""Compiled XML schemas for CEB business messages and the DXP envelope.

The XSD files live in ``schemas/xsd`` and reference each other by relative file name only.
Each schema is compiled once per process (``functools.cache``) with no network access: the
XSD documents are parsed with entity expansion, DTD loading and network access disabled, and
every include/import is resolved inside ``XSD_DIR`` or refused.

- :func:`ceb_schema` — lxml (libxml2) schema for every CEB import message; the fast validator.
- :func:`export_schema` — the same for every CEB export message (``ceb-export.xsd``). Import and
  export declare the same global names (``OrderHead``, ``Inventory``, ``BaseTransfer``…) with other
  content in one namespace, so the two directions are two schemas, never one.
- :func:`thread_schema` / :func:`thread_schemas` — per-thread copies, for validating threads.
- :func:`dxp_schema` — lxml schema for the ``DxpMsg`` / ``DxpRep`` envelopes.
- :func:`ceb_xmlschema` — the same CEB files built with the pure-Python ``xmlschema``
  package, for diagnostics and tooling (paths in errors, decoding to dicts, introspection).
- :func:`direction_of_root` / :func:`schema_for_root` — which direction a root element belongs to.
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
EXPORT_ENTRY = "ceb-export.xsd"
DXP_ENTRY = "dxp-envelope.xsd"
# The CEB entry of each direction (``MessageType.direction``).
ENTRIES: dict[str, str] = {"import": CEB_ENTRY, "export": EXPORT_ENTRY}


def entry_for(direction: str) -> str:
    """The entry file of ``direction`` ("import" or "export")."""
    try:
        return ENTRIES[direction]
    except KeyError:
        raise ValueError(f"unknown CEB direction {direction!r}") from None


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
def _compiled(entry: str) -> etree.XMLSchema:
    return compile_schema(entry)


def ceb_schema(direction: str = "import") -> etree.XMLSchema:
    """The CEB message schema of ``direction`` (import: ``ceb-import.xsd``), compiled once."""
    return _compiled(entry_for(direction))


def export_schema() -> etree.XMLSchema:
    """The CEB export message schema (``ceb-export.xsd``), compiled once."""
    return _compiled(EXPORT_ENTRY)


_local = threading.local()


def thread_schemas() -> tuple[etree.XMLSchema, etree.XMLSchema]:
    """This thread's compiled (CEB import, DxpMsg) schemas, compiled on the thread's first use: an lxml
    schema keeps its error log on itself, so threads validating at once each need their own."""
    pair = getattr(_local, "schemas", None)
    if pair is None:
        pair = _local.schemas = (compile_schema(CEB_ENTRY), compile_schema(DXP_ENTRY))
    return pair


def thread_schema(direction: str = "import") -> etree.XMLSchema:
    """This thread's compiled CEB schema of ``direction``, compiled on the thread's first use of that
    direction (import: the same object as ``thread_schemas()[0]``)."""
    if direction == "import":
        return thread_schemas()[0]
    entry = entry_for(direction)
    own = getattr(_local, "by_entry", None)
    if own is None:
        own = _local.by_entry = {}
    schema = own.get(entry)
    if schema is None:
        schema = own[entry] = compile_schema(entry)
    return schema


_XS = "{http://www.w3.org/2001/XMLSchema}"


@functools.cache
def global_elements(direction: str) -> frozenset[str]:
    """The local names of the global elements that ``direction``'s schema set declares (read from the
    files, following includes; nothing is compiled)."""
    names: set[str] = set()
    todo, seen = [entry_for(direction)], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            root = etree.parse(str(XSD_DIR / name), _xsd_parser()).getroot()
        except (OSError, etree.XMLSyntaxError) as exc:
            raise SchemaLoadError(f"cannot read {name}: {exc}") from exc
        todo += [inc.get("schemaLocation") for inc in root.iterchildren(_XS + "include")]
        names.update(el.get("name") for el in root.iterchildren(_XS + "element"))
    return frozenset(names)


def direction_of_root(localname: str) -> str:
    """"export" for a root that only the export set declares (``CEB603Message``…), else "import"."""
    if localname in global_elements("export") and localname not in global_elements("import"):
        return "export"
    return "import"


def schema_for_root(localname: str) -> etree.XMLSchema:
    """The process-wide compiled schema a document with root ``localname`` is validated against (a
    validating thread wants ``thread_schema(direction_of_root(localname))`` instead)."""
    return ceb_schema(direction_of_root(localname))


@functools.cache
def dxp_schema() -> etree.XMLSchema:
    """The DXP envelope schema (``dxp-envelope.xsd``), compiled once."""
    return compile_schema(DXP_ENTRY)


def ceb_xmlschema(direction: str = "import") -> xmlschema.XMLSchema:
    """The CEB schema of ``direction`` built with the pure-Python ``xmlschema`` package, once.

    Only local resources may be read (``allow="local"``: no network; the XSD files reference
    each other inside ``XSD_DIR`` only), XML is always parsed defused (no DTDs or entities),
    and xmlschema's bundled fallback schemas are not used, so the xmldsig schema is ours
    and not the W3C one. The settings also apply to instances validated with it.
    """
    return _xmlschema(entry_for(direction))


@functools.cache
def _xmlschema(entry: str) -> xmlschema.XMLSchema:
    import xmlschema

    return xmlschema.XMLSchema10(
        str(XSD_DIR / entry),
        base_url=str(XSD_DIR),
        allow="local",
        defuse="always",
        use_fallback=False,
    )
