"""Parsing of untrusted XML: no DTDs, no entities, no network, bounded size and depth.

The parser never loads a DTD, never resolves an entity (so a reference to ``file:///etc/passwd`` or
an exponential "billion laughs" stays an unexpanded reference) and never touches the network.
Any document type declaration is then refused outright: CEB messages have no use for one.
The declared encoding is honoured by libxml2 (UTF-8, GB18030, GBK and GB2312 occur in practice).
"""

from __future__ import annotations

import functools
import threading

from lxml import etree


class UnsafeXml(Exception):
    """The body is not XML we will read. ``code`` follows the exchange-platform codes (0001 malformed)."""

    def __init__(self, message: str, line: int | None = None, code: str = "0001") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.code = code


_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers are not thread-safe: one per thread.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            load_dtd=False,
            dtd_validation=False,
            no_network=True,
            huge_tree=False,  # keeps libxml2's own limits on text node size and depth
            remove_blank_text=False,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


_DOCTYPE = b"<!DOCTYPE"
_DOCTYPE_UTF16 = ("<!DOCTYPE".encode("utf-16-le"), "<!DOCTYPE".encode("utf-16-be"))


def _doctype_in(head: bytes) -> bool:
    return _DOCTYPE in head or (b"\0" in head and (_DOCTYPE_UTF16[0] in head or _DOCTYPE_UTF16[1] in head))


def parse_untrusted(data: bytes, *, max_depth: int, depth_checked_by_caller: bool = False) -> etree._ElementTree:
    """Parse ``data`` or raise :class:`UnsafeXml` saying what is wrong and where.

    ``depth_checked_by_caller``: leave out the ``max_depth`` check; the caller must then either call
    :func:`check_depth` before using anything it learns from the tree or know the tree is shallower.
    """
    if not data or data.isspace():  # the same ASCII whitespace bytes.strip() drops, without a copy
        raise UnsafeXml("the body is empty; send one CEB message or DxpMsg envelope as XML")
    # Looked for in the first 8 KiB. Every spelling has a "!" and the UTF-16 ones a NUL: one memchr
    # each rules them out, where a substring search costs several times more.
    if data.find(b"!", 0, 8192) >= 0 and _doctype_in(data[:8192]):
        # Said plainly before libxml2 sees it; the docinfo check below still catches a late one.
        raise UnsafeXml("document type declarations (DTDs, entities) are not allowed in a filing", 1)
    parser = _parser()
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else None
        msg = exc.msg or str(exc)
        if "Excessive depth" in msg:  # libxml2's own hard limit, deeper than ours
            raise UnsafeXml(f"elements are nested deeper than {max_depth} levels", line) from None
        raise UnsafeXml(f"not well-formed XML: {msg}", line) from None
    except ValueError as exc:  # e.g. an encoding declaration libxml2 cannot honour
        raise UnsafeXml(f"cannot read the XML: {exc}") from None
    tree = root.getroottree()
    docinfo = tree.docinfo
    # A doctype needs one of the two subsets: those two cheap looks settle it before the name is built.
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise UnsafeXml("document type declarations (DTDs, entities) are not allowed in a filing", 1)
    if not depth_checked_by_caller:
        check_depth(root, max_depth)
    return tree


_SHALLOW = 8


@functools.lru_cache(maxsize=8)
def _deeper_than(max_depth: int) -> etree.XPath:
    # One step per level, evaluated inside libxml2: far cheaper than walking the tree in Python.
    return etree.XPath("boolean(/*" + "/*" * max_depth + ")", regexp=False)


def check_depth(root: etree._Element, max_depth: int) -> None:
    """Raise :class:`UnsafeXml` when an element of ``root``'s tree is nested deeper than ``max_depth``."""
    if max_depth > _SHALLOW and not _deeper_than(_SHALLOW)(root):
        return  # messages are shallow (a signature is 6 levels): the short path rules the deep one out
    if _deeper_than(max_depth)(root):
        deep = root.xpath("/*" + "/*" * max_depth)[0]
        raise UnsafeXml(f"elements are nested deeper than {max_depth} levels", deep.sourceline)
