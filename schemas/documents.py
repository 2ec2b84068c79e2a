"""Reading the business documents out of a parsed CEB message: heads, lines and the paths of their fields.

Schema knowledge, not storage: the gateway's rules, its ledger events and its receipts all read documents
through this one view, so none of them has to know another's code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree, objectify

from schemas.catalog import CEB_NS, DS_NS, DXP_NS, PLACEHOLDERS, MessageType
from schemas.loader import CEB_ENTRY, XSD_DIR, entry_for

_PREFIX = {CEB_NS: "ceb", DS_NS: "ds", DXP_NS: "dxp"}
_C = "{%s}" % CEB_NS
_CLEN = len(_C)


def ceb(name: str) -> str:
    return _C + name


def xpath_of(el: etree._Element) -> str:
    """A readable XPath of ``el``: prefixes for known namespaces, an index only where siblings share a name."""
    steps = []
    while el is not None:
        qn = etree.QName(el)
        prefix = _PREFIX.get(qn.namespace or "", None)
        name = f"{prefix}:{qn.localname}" if prefix else (f"{{{qn.namespace}}}{qn.localname}" if qn.namespace else qn.localname)
        parent = el.getparent()
        if parent is not None:
            same = [s for s in parent if s.tag == el.tag]
            if len(same) > 1:
                name += f"[{same.index(el) + 1}]"
        steps.append(name)
        el = parent
    return "/" + "/".join(reversed(steps))


_MISSING = object()
_PATHS: dict[str, objectify.ObjectPath] = {}


def _child_path(name: str) -> objectify.ObjectPath:
    # ObjectPath finds the first child element of that exact tag in C: ~10x cheaper than find() or
    # walking every child for its .tag. The root step "" matches any node it is applied to.
    path = _PATHS.get(name)
    if path is None:
        path = _PATHS[name] = objectify.ObjectPath(["", _C + name])
    return path


_FEW = 8
_NTH: dict[str, tuple[objectify.ObjectPath, ...]] = {}


def _children(node: etree._Element, name: str) -> list[etree._Element]:
    """The children ``ceb:name`` of ``node`` in document order, as ``node.iterchildren(ceb(name))``.

    A handful is found by index (``name[i]``) in C, cheaper than setting up a tag-matching iterator;
    more, by that iterator in one pass.
    """
    paths = _NTH.get(name)
    if paths is None:
        paths = _NTH[name] = tuple(objectify.ObjectPath(["", f"{_C}{name}[{i}]"]) for i in range(_FEW))
    found = []
    for path in paths:
        el = path(node, None)
        if el is None:
            return found
        found.append(el)
    return list(node.iterchildren(_C + name))


def field_paths(names: Iterable[str]) -> tuple[tuple[str, objectify.ObjectPath], ...]:
    """(name, finder) pairs for :meth:`Fields.read`."""
    return tuple((name, _child_path(name)) for name in names)


class Fields:
    """The leaf fields of one node by name (first occurrence), each read when first asked for."""

    __slots__ = ("_texts", "node")

    def __init__(self, node: etree._Element) -> None:
        self.node = node
        self._texts: dict[str, str | None] = {}

    @classmethod
    def of(cls, node: etree._Element) -> Fields:
        return cls(node)

    def element(self, name: str) -> etree._Element | None:
        """The first child ``ceb:name`` (a later same-named one is the schema layer's to report)."""
        return _child_path(name)(self.node, None)

    def text(self, name: str) -> str | None:
        texts = self._texts
        text = texts.get(name, _MISSING)
        if text is _MISSING:
            el = (_PATHS.get(name) or _child_path(name))(self.node, None)
            text = texts[name] = None if el is None else (el.text or "")
        return text

    def read(self, paths: tuple[tuple[str, objectify.ObjectPath], ...], absent: dict[str, None] | None = None,
             ) -> dict[str, str | None]:
        """Read the fields of :func:`field_paths` in one pass; the texts of every field read so far.

        ``absent``: fields known not to be there (see :func:`schema_fields`), taken as None unread.
        """
        texts, node = self._texts, self.node
        if absent:
            texts.update(absent)
        for name, path in paths:  # (one read before is read again: the same text, and cheaper than asking)
            el = path(node, None)
            texts[name] = None if el is None else (el.text or "")
        return texts

    def line(self, name: str) -> int | None:
        el = self.element(name)
        return (el.sourceline if el is not None else None) or self.node.sourceline

    def path(self, name: str) -> str:
        el = self.element(name)
        return xpath_of(el) if el is not None else xpath_of(self.node) + f"/ceb:{name}"

    @property
    def by_name(self) -> dict[str, etree._Element]:
        # reversed, so that the first of two same-named fields wins (the schema layer reports the second)
        return {c.tag[_CLEN:]: c for c in reversed(list(self.node.iterchildren(_C + "*")))}

    def values(self) -> dict[str, str]:
        return {k: (v.text or "") for k, v in self.by_name.items()}


@dataclass(slots=True)
class FiledDocument:
    index: int  # 1-based position in the message
    node: etree._Element  # the wrapper (Order) or the head itself (InvtCancel)
    head: Fields
    lines: list[Fields]
    mtype: MessageType

    @property
    def key_names(self) -> tuple[str, ...]:
        """The head fields of its business key: the type's, or its placeholder key when the platform
        is the placeholder 无 (an export order or collection of a foreign platform, CEB.md §8.2)."""
        mt = self.mtype
        if mt.placeholder_key is not None and self.head.text("ebpCode") == PLACEHOLDERS["ebpCode"]:
            return mt.placeholder_key
        return mt.key

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(self.head.text(k) or "" for k in self.key_names)

    @property
    def key_text(self) -> str:
        return "|".join(self.key)

    @property
    def label(self) -> str:
        step = self.mtype.wrapper or self.mtype.head
        pairs = ", ".join(f"{k}={v}" for k, v in zip(self.key_names, self.key))
        return f"{step}[{self.index}] ({pairs})"

    @property
    def app_type(self) -> str:
        return self.head.text("appType") or ""

    @property
    def app_status(self) -> str:
        return self.head.text("appStatus") or ""


def documents_of(root: etree._Element, mtype: MessageType) -> list[FiledDocument]:
    docs: list[FiledDocument] = []
    head_path = _child_path(mtype.head)
    for i, node in enumerate(_children(root, mtype.wrapper or mtype.head), start=1):
        if mtype.wrapper:
            head_el = head_path(node, None)
            if head_el is None:
                continue  # the schema layer reports it
            lines = [Fields(li) for li in _children(node, mtype.lines)] if mtype.lines else []
        else:
            head_el, lines = node, []
        docs.append(FiledDocument(i, node, Fields(head_el), lines, mtype))
    return docs


def transfer_fields(root: etree._Element) -> Fields | None:
    bt = _child_path("BaseTransfer")(root, None)
    return Fields(bt) if bt is not None else None


# --- what a valid message can hold ---------------------------------------------------------------

_XS = "{http://www.w3.org/2001/XMLSchema}"
_ATTRIBUTE_PARTS = {_XS + "attribute", _XS + "attributeGroup", _XS + "anyAttribute", _XS + "annotation"}
_SUBSTITUTES = etree.XPath("boolean(//xs:redefine | //xs:override | //@substitutionGroup)",
                           namespaces={"xs": _XS[1:-1]})


class _Opaque(Exception):
    """A content model richer than a plain sequence of elements: no conclusion is drawn from it."""


def _qname(el: etree._Element, value: str) -> tuple[str | None, str]:
    prefix, _, local = value.rpartition(":")
    return el.nsmap.get(prefix or None), local


_Parts = tuple[dict[str, etree._Element], dict[str, etree._Element], frozenset[str]]


@functools.cache
def _ceb_schema_parts(entry: str = CEB_ENTRY) -> _Parts:
    """Global CEB elements, complex types and simple type names of the schema set compiled from ``entry``
    (import or export: each direction is a schema of its own, with the same names for other things)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    for path in XSD_DIR.glob("*.xsd"):  # anything that can add names or types behind a declaration's back
        if _SUBSTITUTES(etree.parse(str(path), parser)):
            raise _Opaque(path.name)
    elements: dict[str, etree._Element] = {}
    types: dict[str, etree._Element] = {}
    simple: set[str] = set()
    todo, seen = [entry], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        schema = etree.parse(str(XSD_DIR / name), parser).getroot()
        if schema.get("targetNamespace") != CEB_NS or schema.get("elementFormDefault") != "qualified":
            raise _Opaque(name)
        todo += [inc.get("schemaLocation") for inc in schema.iterchildren(_XS + "include")]
        for decl in schema.iterchildren(_XS + "element", _XS + "complexType"):
            table = elements if decl.tag == _XS + "element" else types
            if decl.get("name") in table:
                raise _Opaque(decl.get("name"))
            table[decl.get("name")] = decl
        simple.update(decl.get("name") for decl in schema.iterchildren(_XS + "simpleType"))
    if simple & types.keys():
        raise _Opaque("a type name used twice")
    return elements, types, frozenset(simple)


def _parts_of(mtype: MessageType) -> _Parts:
    return _ceb_schema_parts(entry_for(mtype.direction))


def _particles(decl: etree._Element, parts: _Parts) -> list[etree._Element]:
    """The element declarations of a plain ``xs:sequence`` content model."""
    types = parts[1]
    ctype = decl.find(_XS + "complexType")
    if ctype is None and decl.get("type"):
        ns, local = _qname(decl, decl.get("type"))
        ctype = types.get(local) if ns == CEB_NS else None
    if ctype is None:
        raise _Opaque(decl.get("name"))
    parts = [c for c in ctype if isinstance(c.tag, str) and c.tag not in _ATTRIBUTE_PARTS]
    if len(parts) != 1 or parts[0].tag != _XS + "sequence":
        raise _Opaque(decl.get("name"))
    particles = [c for c in parts[0] if isinstance(c.tag, str) and c.tag != _XS + "annotation"]
    if any(p.tag != _XS + "element" or p.get("form") for p in particles):
        raise _Opaque(decl.get("name"))
    return particles


def _ceb_name(particle: etree._Element, parts: _Parts) -> tuple[str | None, etree._Element]:
    """(local name if in the CEB namespace, else None; the declaration itself)."""
    if particle.get("ref"):
        ns, local = _qname(particle, particle.get("ref"))
        if ns != CEB_NS:
            return None, particle
        return local, parts[0][local]
    return particle.get("name"), particle


def _allowed(path: tuple[str, ...], parts: _Parts) -> frozenset[str]:
    """The CEB names a valid element at ``path`` (root first) may have as children."""
    decl = parts[0][path[0]]
    for step in path[1:]:
        matches = [d for name, d in (_ceb_name(p, parts) for p in _particles(decl, parts)) if name == step]
        if len(matches) != 1:
            raise _Opaque(step)
        decl = matches[0]
    return frozenset(name for name, _ in (_ceb_name(p, parts) for p in _particles(decl, parts)) if name is not None)


@functools.cache
def schema_fields(mtype: MessageType) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """The CEB fields the schema lets a head and a line of ``mtype`` have: (head, lines).

    Only where the message validated and nothing in it carries xsi:type (which could name another
    type) does this bound what is there; None where the schema's shape is not plain enough to say.
    """
    top = (mtype.root, mtype.wrapper) if mtype.wrapper else (mtype.root,)
    try:
        parts = _parts_of(mtype)
    except _Opaque:
        return None, None
    try:
        head = _allowed((*top, mtype.head), parts)
    except (_Opaque, KeyError):
        head = None
    try:
        lines = _allowed((*top, mtype.lines), parts) if mtype.lines else frozenset()
    except (_Opaque, KeyError):
        lines = None
    return head, lines


def _depth(decl: etree._Element, parts: _Parts, within: tuple[etree._Element, ...] = ()) -> int:
    """How deep a valid element of ``decl`` can go (itself 1); _Opaque where nothing bounds it."""
    if decl in within:
        raise _Opaque("recursive")
    if decl.find(_XS + "simpleType") is not None:
        return 1
    if decl.get("type"):
        ns, local = _qname(decl, decl.get("type"))
        if (ns == _XS[1:-1] and local != "anyType") or (ns == CEB_NS and local in parts[2]):
            return 1  # text only
    deepest = 0
    for name, child in (_ceb_name(p, parts) for p in _particles(decl, parts)):
        if name is None:
            raise _Opaque("another namespace")
        deepest = max(deepest, _depth(child, parts, (*within, decl)))
    return 1 + deepest


@functools.cache
def schema_depth(mtype: MessageType) -> tuple[int | None, tuple[objectify.ObjectPath, ...]]:
    """How deep a message of ``mtype`` that is valid (and carries no xsi:type) can be, unless a root
    child found by one of the finders is there (a signature, an extension: content nothing bounds).
    None where the schema's shape is not plain enough to say.
    """
    try:
        parts = _parts_of(mtype)
        root = parts[0][mtype.root]
        deepest, open_ended = 0, []
        for name, child in (_ceb_name(p, parts) for p in _particles(root, parts)):
            try:
                deepest = max(deepest, _depth(child, parts))
            except _Opaque:
                ref = child.get("ref")
                ns, local = _qname(child, ref) if ref else (CEB_NS, child.get("name"))
                open_ended.append(objectify.ObjectPath(["", f"{{{ns}}}{local}"]))
        return 1 + deepest, tuple(open_ended)
    except (_Opaque, KeyError):
        return None, ()


_depths: dict[str, tuple[int | None, tuple[objectify.ObjectPath, ...]]] = {}


def within_schema_depth(mtype: MessageType, root: etree._Element, max_depth: int) -> bool:
    """Whether ``root``, of a message of ``mtype`` that is valid and carries no xsi:type, is bound by
    the schema to be no deeper than ``max_depth``: a cheaper answer than walking it."""
    known = _depths.get(mtype.code)  # by code: hashing a MessageType hashes all its fields
    if known is None:
        known = _depths[mtype.code] = schema_depth(mtype)
    depth, open_ended = known
    if depth is None or depth > max_depth:
        return False
    for find in open_ended:
        if find(root, None) is not None:
            return False
    return True
