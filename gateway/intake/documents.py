"""Reading the business documents out of a parsed CEB message."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from schemas.catalog import CEB_NS, DS_NS, DXP_NS, MessageType

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


@dataclass(slots=True)
class Fields:
    """The leaf fields of one node: name -> element (first occurrence)."""

    node: etree._Element
    by_name: dict[str, etree._Element] = field(default_factory=dict)

    @classmethod
    def of(cls, node: etree._Element) -> Fields:
        # reversed, so that the first of two same-named fields wins (the schema layer reports the second)
        return cls(node, {c.tag[_CLEN:]: c for c in reversed(list(node.iterchildren(_C + "*")))})

    def text(self, name: str) -> str | None:
        el = self.by_name.get(name)
        if el is None:
            return None
        return el.text or ""

    def line(self, name: str) -> int | None:
        el = self.by_name.get(name)
        return (el.sourceline if el is not None else None) or self.node.sourceline

    def path(self, name: str) -> str:
        el = self.by_name.get(name)
        return xpath_of(el) if el is not None else xpath_of(self.node) + f"/ceb:{name}"

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
    def key(self) -> tuple[str, ...]:
        return tuple(self.head.text(k) or "" for k in self.mtype.key)

    @property
    def key_text(self) -> str:
        return "|".join(self.key)

    @property
    def label(self) -> str:
        step = self.mtype.wrapper or self.mtype.head
        pairs = ", ".join(f"{k}={v}" for k, v in zip(self.mtype.key, self.key))
        return f"{step}[{self.index}] ({pairs})"

    @property
    def app_type(self) -> str:
        return self.head.text("appType") or ""

    @property
    def app_status(self) -> str:
        return self.head.text("appStatus") or ""


def documents_of(root: etree._Element, mtype: MessageType) -> list[FiledDocument]:
    docs: list[FiledDocument] = []
    node_tag = ceb(mtype.wrapper or mtype.head)
    for i, node in enumerate(root.iterchildren(node_tag), start=1):
        if mtype.wrapper:
            head_el = node.find(ceb(mtype.head))
            if head_el is None:
                continue  # the schema layer reports it
            lines = [Fields.of(li) for li in node.iterchildren(ceb(mtype.lines))] if mtype.lines else []
        else:
            head_el, lines = node, []
        docs.append(FiledDocument(i, node, Fields.of(head_el), lines, mtype))
    return docs


def transfer_fields(root: etree._Element) -> Fields | None:
    bt = root.find(ceb("BaseTransfer"))
    return Fields.of(bt) if bt is not None else None
