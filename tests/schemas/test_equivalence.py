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

import base64
import functools
import io
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
import pytest
from lxml import etree

from tests.fixtures.paths import REFERENCE

OFFICIAL_IMPORT = REFERENCE / "xsd" / "import.xsd"
OFFICIAL_TERMINAL = REFERENCE / "xsd" / "terminal.xsd"
SAMPLES_DIR = REFERENCE / "samples" / "import"

if not OFFICIAL_IMPORT.exists():
    pytest.skip(f"official CEB schemas not available at {OFFICIAL_IMPORT}", allow_module_level=True)

from schemas.loader import XSD_DIR, ceb_schema, ceb_xmlschema, dxp_schema  # noqa: E402

CEB = "http://www.chinaport.gov.cn/ceb"
DS = "http://www.w3.org/2000/09/xmldsig#"
DXP = "http://www.chinaport.gov.cn/dxp"
XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
FOREIGN = "urn:example:not-ceb"

SEED = 20220501
MIN_MUTANTS = 300
CJK = "字"  # one BMP CJK character: 3 bytes in UTF-8, 1 character for XSD length facets
ASTRAL = "\U00020000"  # a CJK Extension B character outside the BMP: still 1 character


def _parser() -> etree.XMLParser:
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)


def _c(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


# ---------------------------------------------------------------------------------------------
# the two validators


@functools.cache
def official_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(OFFICIAL_IMPORT), _parser()))


@functools.cache
def official_terminal_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(OFFICIAL_TERMINAL), _parser()))


def _verdict(schema: etree.XMLSchema, data: bytes) -> tuple[bool, str]:
    tree = etree.parse(io.BytesIO(data), _parser())
    ok = schema.validate(tree)
    log = "\n".join(f"    line {e.line}: {e.message}" for e in schema.error_log) or "    (no errors)"
    return ok, log


def _compare(official: etree.XMLSchema, ours: etree.XMLSchema, data: bytes) -> tuple[bool, bool, str]:
    off_ok, off_log = _verdict(official, data)
    our_ok, our_log = _verdict(ours, data)
    report = (
        f"  official: {'VALID' if off_ok else 'INVALID'}\n{off_log}\n"
        f"  ours:     {'VALID' if our_ok else 'INVALID'}\n{our_log}"
    )
    return off_ok, our_ok, report


# ---------------------------------------------------------------------------------------------
# what the official schema says about each leaf field (read, never copied)


@dataclass(frozen=True)
class Field:
    base: str  # "string", "decimal", "int"
    length: int | None
    min_length: int
    max_length: int | None
    total_digits: int | None
    fixed: str | None


@functools.cache
def official_fields() -> dict[tuple[str, str], Field]:
    """(owner global element, field name) -> facets, from the official import.xsd."""
    root = etree.parse(str(OFFICIAL_IMPORT), _parser()).getroot()
    fields: dict[tuple[str, str], Field] = {}
    for owner in root.iterchildren(_c(XS, "element")):
        for decl in owner.iterdescendants(_c(XS, "element")):
            name = decl.get("name")
            if not name:
                continue
            restriction = decl.find(f"{_c(XS, 'simpleType')}/{_c(XS, 'restriction')}")
            if restriction is not None:
                base = restriction.get("base").split(":")[-1]
                facets = {
                    etree.QName(f).localname: f.get("value")
                    for f in restriction
                    if isinstance(f.tag, str) and f.get("value") is not None
                }
            elif (decl.get("type") or "").endswith(":int"):
                base, facets = "int", {}
            else:
                continue
            fields[(owner.get("name"), name)] = Field(
                base=base,
                length=int(facets["length"]) if "length" in facets else None,
                min_length=int(facets.get("minLength", 0)),
                max_length=int(facets["maxLength"]) if "maxLength" in facets else None,
                total_digits=int(facets["totalDigits"]) if "totalDigits" in facets else None,
                fixed=decl.get("fixed"),
            )
    return fields


@functools.cache
def official_owner_fields() -> dict[str, list[tuple[str, Field]]]:
    """Owner global element -> its leaf fields, in the official order."""
    owners: dict[str, list[tuple[str, Field]]] = {}
    for (owner, name), f in official_fields().items():
        owners.setdefault(owner, []).append((name, f))
    return owners


# ---------------------------------------------------------------------------------------------
# corpus


@dataclass(frozen=True)
class Doc:
    id: str
    description: str
    data: bytes


@functools.cache
def samples() -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted(SAMPLES_DIR.glob("*.xml"))}


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _path(el: etree._Element) -> str:
    parts = []
    while el is not None:
        parent = el.getparent()
        name = _local(el)
        if etree.QName(el).namespace == DS:
            name = "ds:" + name
        if parent is not None:
            same = [s for s in parent if s.tag == el.tag]
            if len(same) > 1:
                name += f"[{same.index(el) + 1}]"
        parts.append(name)
        el = parent
    return "/" + "/".join(reversed(parts))


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iterdescendants() if isinstance(e.tag, str)]


def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _ceb_leaves(root: etree._Element) -> list[tuple[etree._Element, Field]]:
    fields = official_fields()
    out = []
    for el in _elements(root):
        parent = el.getparent()
        if etree.QName(el).namespace != CEB or len(_children(el)) or parent is None:
            continue
        f = fields.get((_local(parent), _local(el)))
        if f is not None:
            out.append((el, f))
    return out


def _signature(root: etree._Element) -> etree._Element | None:
    return root.find(_c(DS, "Signature"))


def _insert_after(ref: etree._Element, new: etree._Element) -> None:
    new.tail = ref.tail
    ref.addnext(new)


# ----- value mutations, chosen from the official facets of the field

DECIMAL_VALUES = [
    ("5 fraction digits", "1.12345"),
    ("6 fraction digits", "1.123456"),
    ("6 fraction digits, trailing zero", "1.123450"),
    ("19 total digits", "12345678901234.12345"),
    ("20 total digits", "123456789012345.12345"),
    ("19-digit integer", "1234567890123456789"),
    ("20-digit integer", "12345678901234567890"),
    ("leading zeros", "000000000000000000000001.5"),
    ("negative", "-0.5"),
    ("explicit plus sign", "+7"),
    ("surrounding spaces", "  3.25 "),
    ("non-numeric", "abc"),
    ("exponent", "1E3"),
    ("lower-case exponent", "2.5e-1"),
    ("comma decimal separator", "1,5"),
    ("empty", ""),
    ("NaN", "NaN"),
    ("trailing point", "7."),
]

INT_VALUES = [
    ("zero", "0"),
    ("negative", "-1"),
    ("9 digits", "123456789"),
    ("10 digits", "1234567890"),
    ("int maximum", "2147483647"),
    ("beyond int range", "2147483648"),
    ("decimal point", "1.0"),
    ("non-numeric", "x1"),
    ("empty", ""),
    ("surrounding spaces", " 2 "),
]

CURRENCY_VALUES = [
    ("the fixed 142", "142"),
    ("143", "143"),
    ("CNY", "CNY"),
    ("empty (fixed value applies)", ""),
    ("leading space", " 142"),
    ("142.0", "142.0"),
]


def _string_values(f: Field) -> list[tuple[str, str]]:
    if f.length is not None:
        n = f.length
        vals = [
            (f"exactly {n} ASCII chars", "A" * n),
            (f"exactly {n} CJK chars", CJK * n),
            (f"{n + 1} ASCII chars (length {n})", "B" * (n + 1)),
            (f"{n + 1} CJK chars (length {n})", CJK * (n + 1)),
            (f"{n} chars with one outside the BMP", ASTRAL + "C" * (n - 1)),
            ("empty", ""),
        ]
        if n > 1:
            vals.append((f"{n - 1} chars (length {n})", "D" * (n - 1)))
        if n > 2:
            vals.append((f"{n} chars incl. leading/trailing space", " " + "E" * (n - 2) + " "))
        return vals
    m = f.max_length
    vals = [("empty", ""), ("a single space", " "), ("one CJK char", CJK)]
    if m is not None:
        vals += [
            (f"exactly max {m} ASCII chars", "F" * m),
            (f"exactly max {m} CJK chars", CJK * m),
            (f"{m + 1} ASCII chars (max {m})", "G" * (m + 1)),
            (f"{m + 1} CJK chars (max {m})", CJK * (m + 1)),
            (f"max {m} chars plus a leading space", " " + "H" * m),
            (f"{m} chars with one outside the BMP", ASTRAL + "I" * (m - 1)),
        ]
    else:
        vals.append(("a long value", "J" * 20000))
    return vals


def _value_candidates(f: Field) -> list[tuple[str, str]]:
    if f.fixed is not None:
        return CURRENCY_VALUES
    if f.base == "decimal":
        return DECIMAL_VALUES
    if f.base == "int":
        return INT_VALUES
    return _string_values(f)


def mutate_value(root: etree._Element, rng: random.Random) -> str | None:
    leaves = _ceb_leaves(root)
    if not leaves:
        return None
    el, f = rng.choice(leaves)
    what, value = rng.choice(_value_candidates(f))
    el.text = value
    return f"set {_path(el)} to {what}"


# ----- structural mutations


def drop_element(root: etree._Element, rng: random.Random) -> str | None:
    el = rng.choice(_elements(root))
    path = _path(el)
    el.getparent().remove(el)
    return f"drop {path}"


def duplicate_element(root: etree._Element, rng: random.Random) -> str | None:
    el = rng.choice(_elements(root))
    _insert_after(el, etree.fromstring(etree.tostring(el)))
    return f"duplicate {_path(el)}"


def swap_siblings(root: etree._Element, rng: random.Random) -> str | None:
    candidates = [e for e in _elements(root) if e.getnext() is not None and isinstance(e.getnext().tag, str)]
    if not candidates:
        return None
    el = rng.choice(candidates)
    nxt = el.getnext()
    desc = f"swap {_path(el)} with its next sibling {_local(nxt)}"
    el.addprevious(nxt)  # moves nxt before el
    return desc


def foreign_namespace(root: etree._Element, rng: random.Random) -> str | None:
    el = rng.choice(_elements(root))
    path = _path(el)
    el.tag = _c(FOREIGN, _local(el))
    return f"move {path} into a foreign namespace"


def unknown_element(root: etree._Element, rng: random.Random) -> str | None:
    containers = [e for e in [root, *_elements(root)] if _children(e)]
    parent = rng.choice(containers)
    kids = _children(parent)
    pos = rng.randrange(len(kids) + 1)
    ns = etree.QName(parent).namespace or CEB
    extra = etree.Element(_c(ns, "unknownField"))
    extra.text = "1"
    if pos == len(kids):
        kids[-1].addnext(extra)
    else:
        kids[pos].addprevious(extra)
    return f"insert unknown element {_local(extra)} at position {pos} under {_path(parent)}"


def add_comment_and_pi(root: etree._Element, rng: random.Random) -> str | None:
    el = rng.choice(_elements(root))
    el.addprevious(etree.Comment(" swx mutation "))
    el.addnext(etree.ProcessingInstruction("swx", "mutation"))
    return f"comment and PI around {_path(el)}"


def xsi_nil(root: etree._Element, rng: random.Random) -> str | None:
    leaves = _ceb_leaves(root)
    if not leaves:
        return None
    el, _ = rng.choice(leaves)
    el.set(_c(XSI, "nil"), "true")
    el.text = None
    return f"xsi:nil on {_path(el)}"


RANDOM_STRUCTURAL: list[tuple[str, Callable[[etree._Element, random.Random], str | None], int]] = [
    ("drop", drop_element, 4),
    ("dup", duplicate_element, 3),
    ("swap", swap_siblings, 3),
    ("foreign", foreign_namespace, 2),
    ("unknown", unknown_element, 2),
    ("comment", add_comment_and_pi, 1),
    ("nil", xsi_nil, 1),
]


# ----- root attributes and root element

ROOT_ATTRIBUTE_MUTATIONS: list[tuple[str, Callable[[etree._Element], None]]] = [
    ("no guid attribute", lambda r: r.attrib.pop("guid")),
    ("guid of 35 chars", lambda r: r.set("guid", "A" * 35)),
    ("guid of 37 chars", lambda r: r.set("guid", "A" * 37)),
    ("guid of 36 CJK chars", lambda r: r.set("guid", CJK * 36)),
    ("guid of 36 chars with surrounding spaces", lambda r: r.set("guid", " " + "B" * 34 + " ")),
    ("no version attribute", lambda r: r.attrib.pop("version")),
    ("version of 11 chars", lambda r: r.set("version", "1." + "0" * 9)),
    ("version of 10 chars", lambda r: r.set("version", "1." + "0" * 8)),
    ("empty version", lambda r: r.set("version", "")),
    ("extra attribute", lambda r: r.set("status", "1")),
    ("extra attribute in a foreign namespace", lambda r: r.set(_c(FOREIGN, "flag"), "1")),
    ("namespace-qualified guid", lambda r: (r.set(_c(CEB, "guid"), r.attrib.pop("guid")))),
]


def _wrong_roots(root: etree._Element) -> list[tuple[str, etree._Element]]:
    """Alternative document elements cut from the sample: some are global declarations."""
    out: list[tuple[str, etree._Element]] = []
    code = _local(root)[3:6]
    renamed = etree.fromstring(etree.tostring(root))
    renamed.tag = _c(CEB, "CEB999Message")
    out.append(("root renamed to unknown CEB999Message", renamed))
    other = "CEB412Message" if code != "412" else "CEB311Message"
    swapped = etree.fromstring(etree.tostring(root))
    swapped.tag = _c(CEB, other)
    out.append((f"root renamed to {other}", swapped))
    no_ns = etree.Element(_local(root), dict(root.attrib))
    no_ns.extend(etree.fromstring(etree.tostring(c)) for c in _children(root))
    out.append(("root in no namespace", no_ns))
    first = _children(root)[0]
    out.append((f"first child {_local(first)} as document element", etree.fromstring(etree.tostring(first))))
    inner = _children(first)
    if inner:
        out.append((f"{_local(inner[0])} as document element", etree.fromstring(etree.tostring(inner[0]))))
    for name in ("BaseTransfer",):
        el = root.find(_c(CEB, name))
        if el is not None:
            out.append((f"{name} as document element", etree.fromstring(etree.tostring(el))))
    sig = _signature(root)
    if sig is not None:
        out.append(("ds:Signature as document element", etree.fromstring(etree.tostring(sig))))
        si = sig.find(_c(DS, "SignedInfo"))
        out.append(("ds:SignedInfo as document element", etree.fromstring(etree.tostring(si))))
    return out


# ----- business-message structure: cardinalities, subscriptions, extension slot


def _replicate(first: etree._Element, total: int) -> None:
    present = [s for s in first.getparent() if s.tag == first.tag]
    last = present[-1]
    for _ in range(total - len(present)):
        copy = etree.fromstring(etree.tostring(first))
        _insert_after(last, copy)
        last = copy


def _base_subscribe() -> etree._Element:
    el = etree.Element(_c(CEB, "BaseSubscribe"))
    for name, value in (("status", "ALL"), ("dxpMode", "DXP"), ("dxpAddress", "DXPENT0000000042")):
        etree.SubElement(el, _c(CEB, name)).text = value
    return el


def _extend_message(payload: list[etree._Element] | None = None, text: str | None = None) -> etree._Element:
    el = etree.Element(_c(CEB, "ExtendMessage"))
    etree.SubElement(el, _c(CEB, "name")).text = "swx-extension"
    etree.SubElement(el, _c(CEB, "version")).text = "1.0"
    msg = etree.SubElement(el, _c(CEB, "Message"))
    msg.text = text
    for p in payload or []:
        msg.append(p)
    return el


def _foreign(name: str = "Extra", ns: str = FOREIGN) -> etree._Element:
    el = etree.Element(_c(ns, name), {"attr": "x"})
    etree.SubElement(el, _c(ns, "child")).text = "anything"
    return el


WRAPPERS = {"Order", "Payment", "Logistics", "Inventory", "InvtRefund", "Delivery", "Tax"}


def business_mutations(root: etree._Element) -> list[tuple[str, Callable[[etree._Element], None]]]:
    """Targeted mutations, each applied to a fresh copy of ``root``."""
    name = _local(root)
    first = _children(root)[0]
    muts: list[tuple[str, Callable[[etree._Element], None]]] = []
    cap = 1 if _local(first) == "Delivery" else 100

    def repeat_first(total: int) -> Callable[[etree._Element], None]:
        return lambda r: _replicate(_children(r)[0], total)

    muts.append((f"{_local(first)} repeated to {cap}", repeat_first(cap)))
    muts.append((f"{_local(first)} repeated to {cap + 1}", repeat_first(cap + 1)))
    lines = _children(first)[1:] if _local(first) in WRAPPERS else []
    if lines and lines[0].tag != _children(first)[0].tag:
        line_cap = None if _local(lines[0]) == "DeliveryList" else 99

        def repeat_lines(total: int) -> Callable[[etree._Element], None]:
            return lambda r: _replicate(_children(_children(r)[0])[1], total)

        if line_cap is None:
            muts.append((f"{_local(lines[0])} repeated to 150", repeat_lines(150)))
        else:
            muts.append((f"{_local(lines[0])} repeated to {line_cap}", repeat_lines(line_cap)))
            muts.append((f"{_local(lines[0])} repeated to {line_cap + 1}", repeat_lines(line_cap + 1)))
        muts.append((f"{_local(first)} without lines", lambda r: [_children(r)[0].remove(x) for x in _children(_children(r)[0])[1:]]))

    bt = root.find(_c(CEB, "BaseTransfer"))
    if bt is None:
        muts.append(("empty document element", lambda r: [r.remove(c) for c in _children(r)]))
        return muts

    def bt_of(r: etree._Element) -> etree._Element:
        return r.find(_c(CEB, "BaseTransfer"))

    def add_subscribers(n: int) -> Callable[[etree._Element], None]:
        def f(r: etree._Element) -> None:
            anchor = bt_of(r)
            for _ in range(n):
                s = _base_subscribe()
                _insert_after(anchor, s)
                anchor = s

        return f

    def add_extend(ext: etree._Element) -> Callable[[etree._Element], None]:
        def f(r: etree._Element) -> None:
            anchor = bt_of(r)
            following = [c for c in _children(r) if _local(c) == "BaseSubscribe"]
            _insert_after(following[-1] if following else anchor, etree.fromstring(etree.tostring(ext)))

        return f

    muts += [
        ("5 BaseSubscribe blocks", add_subscribers(5)),
        ("6 BaseSubscribe blocks", add_subscribers(6)),
        ("BaseSubscribe before BaseTransfer", lambda r: bt_of(r).addprevious(_base_subscribe())),
        ("BaseSubscribe with empty status", lambda r: (add_subscribers(1)(r), bt_of(r).getnext()[0].__setattr__("text", ""))),
        ("ExtendMessage carrying a foreign element", add_extend(_extend_message([_foreign()]))),
        ("ExtendMessage carrying an undeclared CEB element (skip)", add_extend(_extend_message([_foreign("Bogus", CEB)]))),
        ("ExtendMessage carrying an invalid ceb:BaseTransfer (skip: not validated)",
         add_extend(_extend_message([etree.Element(_c(CEB, "BaseTransfer"))]))),
        ("ExtendMessage with an empty Message", add_extend(_extend_message())),
        ("ExtendMessage whose Message has two elements", add_extend(_extend_message([_foreign(), _foreign("Other")]))),
        ("ExtendMessage whose Message has text", add_extend(_extend_message(text="free text"))),
        ("ExtendMessage with a 31-char name", lambda r: (add_extend(_extend_message([_foreign()]))(r), _set_ext_name(r, "N" * 31))),
        ("ExtendMessage with a 30-char CJK name", lambda r: (add_extend(_extend_message([_foreign()]))(r), _set_ext_name(r, CJK * 30))),
        ("two ExtendMessage blocks", lambda r: (add_extend(_extend_message())(r), add_extend(_extend_message())(r))),
        ("ExtendMessage appended as the last child", lambda r: r.append(_extend_message())),
        ("no BaseTransfer", lambda r: r.remove(bt_of(r))),
        ("BaseTransfer note at 1000 CJK chars", lambda r: _set_child(bt_of(r), "note", CJK * 1000)),
        ("BaseTransfer note at 1001 chars", lambda r: _set_child(bt_of(r), "note", "n" * 1001)),
        ("BaseTransfer with empty copName and dxpId", lambda r: (_set_child(bt_of(r), "copName", ""), _set_child(bt_of(r), "dxpId", ""))),
        ("BaseTransfer with empty copCode", lambda r: _set_child(bt_of(r), "copCode", "")),
        ("BaseTransfer dxpMode of 4 chars", lambda r: _set_child(bt_of(r), "dxpMode", "DXPX")),
    ]
    sig = _signature(root)
    if sig is not None:
        muts.append(("no ds:Signature" + (" (required)" if name[3:6] in {"621", "623", "625", "711"} else ""),
                     lambda r: r.remove(_signature(r))))
    return muts


def _set_ext_name(r: etree._Element, value: str) -> None:
    r.find(f"{_c(CEB, 'ExtendMessage')}/{_c(CEB, 'name')}").text = value


def _set_child(parent: etree._Element, name: str, value: str) -> None:
    el = parent.find(_c(CEB, name))
    if el is None:
        # insert optional 'note' at the end of BaseTransfer
        el = etree.SubElement(parent, _c(CEB, name))
    el.text = value


# ----- ds:Signature mutations (the e-port profile is stricter than W3C)


def _ds(tag: str, text: str | None = None, /, **attrs: str) -> etree._Element:
    el = etree.Element(_c(DS, tag), attrs)
    el.text = text
    return el


def _sig_find(r: etree._Element, path: str) -> etree._Element:
    el = _signature(r)
    for step in path.split("/"):
        el = el.find(_c(DS, step))
    return el


def signature_mutations() -> list[tuple[str, Callable[[etree._Element], None]]]:
    f = _sig_find

    def x509(r: etree._Element) -> etree._Element:
        return f(r, "KeyInfo/X509Data")

    return [
        ("ds: no KeyInfo", lambda r: _signature(r).remove(f(r, "KeyInfo"))),
        ("ds: no SignedInfo", lambda r: _signature(r).remove(f(r, "SignedInfo"))),
        ("ds: no SignatureValue", lambda r: _signature(r).remove(f(r, "SignatureValue"))),
        ("ds: Object after KeyInfo (W3C allows, e-port does not)", lambda r: _signature(r).append(_ds("Object", "data"))),
        ("ds: Id on Signature", lambda r: _signature(r).set("Id", "sig1")),
        ("ds: Id on SignedInfo (W3C allows, e-port does not)", lambda r: f(r, "SignedInfo").set("Id", "si1")),
        ("ds: Id on SignatureValue", lambda r: f(r, "SignatureValue").set("Id", "sv1")),
        ("ds: Id on KeyInfo", lambda r: f(r, "KeyInfo").set("Id", "ki1")),
        ("ds: Id on Reference", lambda r: f(r, "SignedInfo/Reference").set("Id", "ref1")),
        ("ds: same Id on Signature and Reference", lambda r: (_signature(r).set("Id", "dup"), f(r, "SignedInfo/Reference").set("Id", "dup"))),
        ("ds: Id that is not an NCName", lambda r: _signature(r).set("Id", "1 bad")),
        ("ds: HMACOutputLength child in SignatureMethod", lambda r: f(r, "SignedInfo/SignatureMethod").append(_ds("HMACOutputLength", "128"))),
        ("ds: foreign child in SignatureMethod", lambda r: f(r, "SignedInfo/SignatureMethod").append(_foreign())),
        ("ds: text inside SignatureMethod", lambda r: f(r, "SignedInfo/SignatureMethod").__setattr__("text", "mixed text")),
        ("ds: foreign child in DigestMethod", lambda r: f(r, "SignedInfo/Reference/DigestMethod").append(_foreign())),
        ("ds: foreign child in CanonicalizationMethod", lambda r: f(r, "SignedInfo/CanonicalizationMethod").append(_foreign())),
        ("ds: SignatureMethod without Algorithm", lambda r: f(r, "SignedInfo/SignatureMethod").attrib.pop("Algorithm")),
        ("ds: DigestMethod without Algorithm", lambda r: f(r, "SignedInfo/Reference/DigestMethod").attrib.pop("Algorithm")),
        ("ds: W3C spelling of the SM2 algorithm", lambda r: f(r, "SignedInfo/SignatureMethod").set("Algorithm", DS + "sm2-sm3")),
        ("ds: two References", lambda r: _insert_after(f(r, "SignedInfo/Reference"), etree.fromstring(etree.tostring(f(r, "SignedInfo/Reference"))))),
        ("ds: no Reference", lambda r: f(r, "SignedInfo").remove(f(r, "SignedInfo/Reference"))),
        ("ds: no Transforms", lambda r: f(r, "SignedInfo/Reference").remove(f(r, "SignedInfo/Reference/Transforms"))),
        ("ds: empty Transforms", lambda r: [f(r, "SignedInfo/Reference/Transforms").remove(t) for t in _children(f(r, "SignedInfo/Reference/Transforms"))]),
        ("ds: XPath inside Transform", lambda r: f(r, "SignedInfo/Reference/Transforms/Transform").append(_ds("XPath", "not(ancestor-or-self::ds:Signature)"))),
        ("ds: foreign element inside Transform", lambda r: f(r, "SignedInfo/Reference/Transforms/Transform").append(_foreign())),
        ("ds: ds:KeyName inside Transform", lambda r: f(r, "SignedInfo/Reference/Transforms/Transform").append(_ds("KeyName", "k"))),
        ("ds: Reference without URI", lambda r: f(r, "SignedInfo/Reference").attrib.pop("URI")),
        ("ds: Reference with Type", lambda r: f(r, "SignedInfo/Reference").set("Type", "urn:x")),
        ("ds: DigestValue not base64", lambda r: f(r, "SignedInfo/Reference/DigestValue").__setattr__("text", "not base64!")),
        ("ds: SignatureValue not base64", lambda r: f(r, "SignatureValue").__setattr__("text", "@@@")),
        ("ds: SignatureValue empty", lambda r: f(r, "SignatureValue").__setattr__("text", "")),
        ("ds: X509Certificate not base64", lambda r: x509(r).find(_c(DS, "X509Certificate")).__setattr__("text", "%%%")),
        ("ds: empty KeyInfo", lambda r: [f(r, "KeyInfo").remove(c) for c in _children(f(r, "KeyInfo"))]),
        ("ds: KeyInfo with KeyName only", lambda r: f(r, "KeyInfo").remove(x509(r))),
        ("ds: KeyInfo with MgmtData", lambda r: f(r, "KeyInfo").append(_ds("MgmtData", "m"))),
        ("ds: foreign element in KeyInfo (lax)", lambda r: f(r, "KeyInfo").append(_foreign())),
        ("ds: valid ceb:BaseTransfer in KeyInfo (lax, validated)", lambda r: f(r, "KeyInfo").append(etree.fromstring(etree.tostring(r.find(_c(CEB, "BaseTransfer")))))),
        ("ds: broken ceb:BaseTransfer in KeyInfo (lax, validated)", lambda r: f(r, "KeyInfo").append(etree.Element(_c(CEB, "BaseTransfer")))),
        ("ds: undeclared ceb element in KeyInfo (lax, skipped)", lambda r: f(r, "KeyInfo").append(etree.Element(_c(CEB, "NotDeclared")))),
        ("ds: Object inside KeyInfo", lambda r: f(r, "KeyInfo").append(_ds("Object"))),
        ("ds: text in KeyInfo (mixed)", lambda r: f(r, "KeyInfo").__setattr__("text", "text")),
        ("ds: X509IssuerSerial with integer serial", lambda r: x509(r).append(_issuer_serial("12345"))),
        ("ds: X509IssuerSerial with non-integer serial", lambda r: x509(r).append(_issuer_serial("12a"))),
        ("ds: X509SubjectName and foreign element in X509Data", lambda r: (x509(r).append(_ds("X509SubjectName", "CN=x")), x509(r).append(_foreign()))),
        ("ds: empty X509Data", lambda r: [x509(r).remove(c) for c in _children(x509(r))]),
        ("ds: RSAKeyValue in KeyValue", lambda r: f(r, "KeyInfo").append(_key_value("RSA"))),
        ("ds: RSAKeyValue missing Exponent", lambda r: f(r, "KeyInfo").append(_key_value("RSA-broken"))),
        ("ds: DSAKeyValue with P but no Q", lambda r: f(r, "KeyInfo").append(_key_value("DSA-broken"))),
        ("ds: PGPData with a key packet only", lambda r: f(r, "KeyInfo").append(_pgp(["PGPKeyPacket"]))),
        ("ds: PGPData with two key ids", lambda r: f(r, "KeyInfo").append(_pgp(["PGPKeyID", "PGPKeyID"]))),
        ("ds: RetrievalMethod with Transforms", lambda r: f(r, "KeyInfo").append(_retrieval())),
        ("ds: SignedInfo children reordered", lambda r: f(r, "SignedInfo/CanonicalizationMethod").addprevious(f(r, "SignedInfo/SignatureMethod"))),
        ("ds: KeyInfo before SignatureValue", lambda r: f(r, "SignatureValue").addprevious(f(r, "KeyInfo"))),
        ("ds: Signature in no namespace", lambda r: _rename_tree(_signature(r), DS, None)),
    ]


def _rename_tree(el: etree._Element, old: str, new: str | None) -> None:
    for e in el.iter():
        if isinstance(e.tag, str) and etree.QName(e).namespace == old:
            e.tag = _c(new, _local(e)) if new else _local(e)


def _issuer_serial(serial: str) -> etree._Element:
    el = _ds("X509IssuerSerial")
    el.append(_ds("X509IssuerName", "CN=issuer"))
    el.append(_ds("X509SerialNumber", serial))
    return el


def _key_value(kind: str) -> etree._Element:
    kv = _ds("KeyValue")
    if kind.startswith("RSA"):
        rsa = _ds("RSAKeyValue")
        rsa.append(_ds("Modulus", "AQAB"))
        if kind == "RSA":
            rsa.append(_ds("Exponent", "AQAB"))
        kv.append(rsa)
    else:
        dsa = _ds("DSAKeyValue")
        dsa.append(_ds("P", "AQAB"))
        dsa.append(_ds("Y", "AQAB"))
        kv.append(dsa)
    return kv


def _pgp(children: list[str]) -> etree._Element:
    el = _ds("PGPData")
    for c in children:
        el.append(_ds(c, "AQAB"))
    return el


def _retrieval() -> etree._Element:
    el = _ds("RetrievalMethod", URI="#key")
    ts = _ds("Transforms")
    ts.append(_ds("Transform", Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"))
    el.append(ts)
    return el


# ----- synthetic bases for the messages the official package has no sample of (816, 818, 900)


def _valid_value(f: Field) -> str:
    if f.fixed is not None:
        return f.fixed
    if f.base == "decimal":
        return "10.5"
    if f.base == "int":
        return "1"
    if f.length is not None:
        return "7" * f.length
    return "v" * min(f.max_length or 8, 8)


def _synth(owner: str) -> etree._Element:
    el = etree.Element(_c(CEB, owner))
    for name, f in official_owner_fields()[owner]:
        etree.SubElement(el, _c(CEB, name)).text = _valid_value(f)
    return el


def _synth_message(code: str, build: Callable[[etree._Element], None]) -> bytes:
    guid = str(uuid.UUID(int=int(code))).upper()
    root = etree.Element(_c(CEB, f"CEB{code}Message"), {"guid": guid, "version": "1.0"}, nsmap={"ceb": CEB})
    build(root)
    return _serialize(root)


def _tax_816(root: etree._Element) -> None:
    for _ in range(2):
        tax = etree.SubElement(root, _c(CEB, "Tax"))
        tax.append(_synth("TaxHeadRd"))
        tax.append(_synth("TaxListRd"))
        tax.append(_synth("TaxListRd"))


def _tax_818(root: etree._Element) -> None:
    for _ in range(2):
        etree.SubElement(root, _c(CEB, "Tax")).append(_synth("TaxHeadStatus"))


@functools.cache
def synthetic_bases() -> dict[str, bytes]:
    return {
        "CEB816synth": _synth_message("816", _tax_816),
        "CEB818synth": _synth_message("818", _tax_818),
        "CEB900synth": _synth_message("900", lambda r: r.append(_synth("MessageReturn"))),
    }


# ----- systematic sweep: every official field, at its limits, dropped, or added when absent


def _sweep_values(f: Field) -> list[tuple[str, str]]:
    if f.fixed is not None:
        return [("the fixed value", f.fixed), ("a different code", "143"), ("empty (fixed value applies)", "")]
    if f.base == "decimal":
        return [
            ("5 fraction digits", "1.12345"),
            ("6 fraction digits", "1.123456"),
            ("19 total digits", "12345678901234.12345"),
            ("20 total digits", "123456789012345.12345"),
            ("non-numeric", "abc"),
            ("empty", ""),
        ]
    if f.base == "int":
        return [
            ("9 digits", "123456789"),
            ("10 digits", "1234567890"),
            ("beyond int range", "2147483648"),
            ("non-numeric", "abc"),
        ]
    if f.length is not None:
        n = f.length
        vals = [
            (f"exactly {n} ASCII chars", "K" * n),
            (f"exactly {n} CJK chars", CJK * n),
            (f"{n + 1} ASCII chars (length {n})", "L" * (n + 1)),
            ("empty", ""),
        ]
        if n > 1:
            vals.append((f"{n - 1} CJK chars (length {n})", CJK * (n - 1)))
        return vals
    if f.max_length is None:
        return [("empty", ""), ("20000 chars", "M" * 20000)]
    m = f.max_length
    return [
        ("empty", ""),
        (f"exactly max {m} CJK chars", CJK * m),
        (f"{m + 1} ASCII chars (max {m})", "N" * (m + 1)),
    ]


def field_sweep(bases: dict[str, bytes]) -> list[tuple[str, str, bytes]]:
    """(base, description, document) for every field of every owner element."""
    out: list[tuple[str, str, bytes]] = []
    by_size = sorted(bases.items(), key=lambda kv: len(kv[1]))
    for owner, fields in official_owner_fields().items():
        tag = _c(CEB, owner)
        base = next((stem for stem, data in by_size if etree.fromstring(data, _parser()).find(f".//{tag}") is not None), None)
        if base is None:
            continue
        data = bases[base]
        order = [name for name, _ in fields]
        for name, f in fields:
            def fresh(data: bytes = data, tag: str = tag, name: str = name) -> tuple[etree._Element, etree._Element, etree._Element | None]:
                root = etree.fromstring(data, _parser())
                inst = root if root.tag == tag else root.find(f".//{tag}")
                return root, inst, inst.find(_c(CEB, name))

            root, inst, el = fresh()
            if el is not None:
                path = _path(el)
                inst.remove(el)
                out.append((base, f"sweep: drop {path}", _serialize(root)))
                for what, value in _sweep_values(f):
                    root, inst, el = fresh()
                    el.text = value
                    out.append((base, f"sweep: set {path} to {what}", _serialize(root)))
            else:
                # absent optional field: add it where the official order puts it
                variants = [("a valid value", _valid_value(f))]
                if f.max_length is not None:
                    variants.append((f"{f.max_length + 1} chars (max {f.max_length})", "O" * (f.max_length + 1)))
                elif f.length is not None:
                    variants.append((f"{f.length + 1} chars (length {f.length})", "O" * (f.length + 1)))
                for what, value in variants:
                    root, inst, _ = fresh()
                    new = etree.Element(_c(CEB, name))
                    new.text = value
                    before = [inst.find(_c(CEB, p)) for p in order[: order.index(name)]]
                    before = [b for b in before if b is not None]
                    if before:
                        _insert_after(before[-1], new)
                    else:
                        inst.insert(0, new)
                    out.append((base, f"sweep: add absent {owner}/{name} with {what}", _serialize(root)))
    return out


# ----- assembling the corpus

RANDOM_STRUCTURAL_PER_SAMPLE = 14
RANDOM_VALUES_PER_SAMPLE = 18


@functools.cache
def corpus() -> tuple[Doc, ...]:
    docs: list[Doc] = []
    bases = {**samples(), **synthetic_bases()}
    counters = dict.fromkeys(bases, 0)

    def add_doc(stem: str, op: str, desc: str, data: bytes) -> None:
        counters[stem] += 1
        docs.append(Doc(f"{stem}-{counters[stem]:03d}-{op}", f"{stem}: {desc}", data))

    for stem, data in bases.items():
        origin = "official sample" if stem in samples() else "synthetic message built from the official field list"
        docs.append(Doc(f"{stem}-original", f"{stem}: {origin}, unchanged", data))
        rng = random.Random(f"{SEED}:{stem}")

        def add(op: str, desc: str | None, root: etree._Element) -> None:
            if desc is not None:
                add_doc(stem, op, desc, _serialize(root))

        # random structure: drop, duplicate, reorder, foreign namespace, unknown element ...
        ops = [op for op in RANDOM_STRUCTURAL for _ in range(op[2])]
        for _ in range(RANDOM_STRUCTURAL_PER_SAMPLE):
            name, fn, _w = rng.choice(ops)
            root = etree.fromstring(data, _parser())
            add(name, fn(root, rng), root)

        # random values: lengths (ASCII / CJK / astral), empties, decimals, ints, currency
        for _ in range(RANDOM_VALUES_PER_SAMPLE):
            root = etree.fromstring(data, _parser())
            add("value", mutate_value(root, rng), root)

        # root attributes
        for desc, fn in ROOT_ATTRIBUTE_MUTATIONS:
            root = etree.fromstring(data, _parser())
            fn(root)
            add("rootattr", desc, root)

        # wrong document elements
        for desc, new_root in _wrong_roots(etree.fromstring(data, _parser())):
            add("root", desc, new_root)

        # cardinalities, subscriptions, extension slot, transmitter
        for desc, fn in business_mutations(etree.fromstring(data, _parser())):
            root = etree.fromstring(data, _parser())
            fn(root)
            add("shape", desc, root)

        # inside ds:Signature
        if _signature(etree.fromstring(data, _parser())) is not None:
            for desc, fn in signature_mutations():
                root = etree.fromstring(data, _parser())
                fn(root)
                add("ds", desc, root)

    for stem, desc, data in field_sweep(bases):
        add_doc(stem, "field", desc, data)
    return tuple(docs)


def _mutants() -> list[Doc]:
    return [d for d in corpus() if not d.id.endswith("-original")]


# ---------------------------------------------------------------------------------------------
# tests


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


# ----- DXP envelope


def _envelope(payload: bytes, *, trans_info: bool = True) -> etree._Element:
    env = etree.Element(_c(DXP, "DxpMsg"), {"ver": "1.0"}, nsmap={"dxp": DXP})
    if trans_info:
        ti = etree.SubElement(env, _c(DXP, "TransInfo"))
        etree.SubElement(ti, _c(DXP, "CopMsgId")).text = "swx-test-0001"
        etree.SubElement(ti, _c(DXP, "SenderId")).text = "DXPENT0000000001"
        rids = etree.SubElement(ti, _c(DXP, "ReceiverIds"))
        etree.SubElement(rids, _c(DXP, "ReceiverId")).text = "DXPEDCCEB0000002"
        etree.SubElement(ti, _c(DXP, "CreatTime")).text = "2024-03-01T10:20:30"
        etree.SubElement(ti, _c(DXP, "MsgType")).text = "CEB311Message"
    etree.SubElement(env, _c(DXP, "Data")).text = base64.b64encode(payload).decode("ascii")
    return env


def _dx(env: etree._Element, path: str) -> etree._Element:
    el = env
    for step in path.split("/"):
        el = el.find(_c(DXP, step))
    return el


def _add_info(env: etree._Element, *children: etree._Element) -> etree._Element:
    info = etree.Element(_c(DXP, "AddInfo"))
    info.extend(children)
    _dx(env, "Data").addnext(info)
    return info


def _dxp(tag: str, text: str | None = None, /, **attrs: str) -> etree._Element:
    el = etree.Element(_c(DXP, tag), attrs)
    el.text = text
    return el


def _biz_key(n: int) -> etree._Element:
    bk = _dxp("BizKey")
    for i in range(n):
        bk.append(_dxp("Key", f"value{i}", name=f"key{i}"))
    return bk


def _envelope_mutations() -> list[tuple[str, Callable[[etree._Element], None]]]:
    sample_sig = _signature(etree.fromstring(samples()["CEB621Message"], _parser()))

    def receivers(n: int) -> Callable[[etree._Element], None]:
        def f(env: etree._Element) -> None:
            rids = _dx(env, "TransInfo/ReceiverIds")
            for i in range(n - 1):
                rids.append(_dxp("ReceiverId", f"DXPENT000000010{i}"))

        return f

    return [
        ("unchanged", lambda e: None),
        ("5 receivers", receivers(5)),
        ("6 receivers", receivers(6)),
        ("no receivers", lambda e: [_dx(e, "TransInfo/ReceiverIds").remove(c) for c in _children(_dx(e, "TransInfo/ReceiverIds"))]),
        ("ver 2.0", lambda e: e.set("ver", "2.0")),
        ("no ver", lambda e: e.attrib.pop("ver")),
        ("Id attribute", lambda e: e.set("Id", "env1")),
        ("Data not base64", lambda e: _dx(e, "Data").__setattr__("text", "***")),
        ("Data empty", lambda e: _dx(e, "Data").__setattr__("text", "")),
        ("SenderId of 17 chars", lambda e: _dx(e, "TransInfo/SenderId").__setattr__("text", "S" * 17)),
        ("SenderId of 16 CJK chars", lambda e: _dx(e, "TransInfo/SenderId").__setattr__("text", CJK * 16)),
        ("CreatTime not a dateTime", lambda e: _dx(e, "TransInfo/CreatTime").__setattr__("text", "20240301102030")),
        ("empty MsgType", lambda e: _dx(e, "TransInfo/MsgType").__setattr__("text", "")),
        ("MsgType of 31 chars", lambda e: _dx(e, "TransInfo/MsgType").__setattr__("text", "M" * 31)),
        ("TransInfo children reordered", lambda e: _dx(e, "TransInfo/CopMsgId").addprevious(_dx(e, "TransInfo/SenderId"))),
        ("full AddInfo", lambda e: _add_info(e, _dxp("FileName", "order.xml"), _dxp("IcCard", "1234567890123"), _biz_key(5), _dxp("IsText", Encode="UTF-8"), _foreign_recmap())),
        ("AddInfo with 6 business keys", lambda e: _add_info(e, _biz_key(6))),
        ("AddInfo IsText without Encode", lambda e: _add_info(e, _dxp("IsText"))),
        ("AddInfo IsText with text content", lambda e: _add_info(e, _dxp("IsText", "x", Encode="UTF-8"))),
        ("AddInfo children reordered", lambda e: _add_info(e, _dxp("IcCard", "1"), _dxp("FileName", "a.xml"))),
        ("AddInfo empty FileName", lambda e: _add_info(e, _dxp("FileName", ""))),
        ("AddInfo before Data", lambda e: _dx(e, "Data").addprevious(_dxp("AddInfo"))),
        ("with the sample ds:Signature", lambda e: e.append(etree.fromstring(etree.tostring(sample_sig)))),
        ("ds:Signature with an Object", lambda e: e.append(_sig_with_object(sample_sig))),
        ("ds:Signature before AddInfo", lambda e: (_add_info(e), _dx(e, "AddInfo").addprevious(etree.fromstring(etree.tostring(sample_sig))))),
        ("unknown child", lambda e: e.append(_dxp("Extra", "1"))),
        ("no Data", lambda e: e.remove(_dx(e, "Data"))),
    ]


def _foreign_recmap() -> etree._Element:
    el = _dxp("RecMapId", "map-1", anything="goes")
    el.append(_foreign())
    return el


def _sig_with_object(sig: etree._Element) -> etree._Element:
    copy = etree.fromstring(etree.tostring(sig))
    copy.append(_ds("Object", "x"))
    return copy


def _dxp_rep() -> etree._Element:
    rep = etree.Element(_c(DXP, "DxpRep"), {"ver": "1.0"}, nsmap={"dxp": DXP})
    rep.append(_dxp("RecevierId", "DXPENT0000000001"))
    resp = etree.SubElement(rep, _c(DXP, "Response"))
    resp.append(_dxp("ResponseCode", "0"))
    results = etree.SubElement(resp, _c(DXP, "Results"))
    res = etree.SubElement(results, _c(DXP, "Result"))
    res.append(_dxp("RecId", "DXPEDCCEB0000002"))
    res.append(_dxp("Code", "0"))
    resp.append(_dxp("NoticeTime", "2024-03-01"))
    resp.append(etree.fromstring(etree.tostring(_envelope(b"x")[0])))
    resp[-1].tag = _c(DXP, "OriHead")
    return rep


def test_dxp_envelope_accepts_and_rejects() -> None:
    schema = dxp_schema()
    payload = samples()["CEB311Message"]
    good = _envelope(payload)
    assert schema.validate(good), schema.error_log
    assert base64.b64decode(_dx(good, "Data").text) == payload
    bad = _envelope(payload, trans_info=False)
    assert not schema.validate(bad)
    assert "TransInfo" in str(schema.error_log)
    rep = _dxp_rep()
    assert schema.validate(rep), schema.error_log


def test_dxp_envelope_same_verdict_as_official_terminal() -> None:
    if not OFFICIAL_TERMINAL.exists():
        pytest.skip("official terminal.xsd not available")
    payload = samples()["CEB621Message"]
    results = []
    for desc, fn in _envelope_mutations():
        env = _envelope(payload)
        fn(env)
        data = _serialize(env)
        results.append((desc, *_compare(official_terminal_schema(), dxp_schema(), data)))
    rep = _serialize(_dxp_rep())
    results.append(("DxpRep", *_compare(official_terminal_schema(), dxp_schema(), rep)))
    mismatches = [f"{d}\n{report}" for d, off, ours, report in results if off != ours]
    assert not mismatches, "envelope verdicts differ:\n" + "\n".join(mismatches)
    verdicts = [off for _, off, _, _ in results]
    assert verdicts.count(True) >= 5 and verdicts.count(False) >= 5, verdicts
