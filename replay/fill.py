"""Put the target's own list numbers into an export filing before it is sent, and sign it again.

Why: a 605, 213, 215 or 701 names the ``invtNo`` customs assigns when it enters the list, which no
generator can know. An export set (schemas/samples/export.py) writes a stand-in number and says in
the manifest (``fill``) whose list it stands for; the replay reads that list's number from the
target's declaration view and swaps it in. The signature no longer matches the changed message, so
a signed message is signed afresh with the test identity (schemas.signature), as the generator
signed it; swx checks that a signature verifies, not whose certificate made it.
"""

from __future__ import annotations

from lxml import etree

from schemas.catalog import CEB_NS, DS_NS
from schemas.signature import sign, test_signing_identity

_INVT = f"{{{CEB_NS}}}invtNo"
_SIG = f"{{{DS_NS}}}Signature"
_EXTEND = f"{{{CEB_NS}}}ExtendMessage"


def fill_numbers(body: bytes, numbers: dict[str, str]) -> bytes:
    """``body`` with every ``invtNo`` whose text is a key of ``numbers`` replaced by its value; the
    unchanged bytes when nothing matches (or the message cannot be read: the target will say why)."""
    if not numbers:
        return body
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return body
    changed = False
    for el in root.iter(_INVT):
        if el.text in numbers:
            el.text = numbers[el.text]
            changed = True
    if not changed:
        return body
    old = root.find(_SIG)
    if old is not None:
        root.remove(old)
        sign(root, *test_signing_identity(), before=root.find(_EXTEND))
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8") + b"\n"
