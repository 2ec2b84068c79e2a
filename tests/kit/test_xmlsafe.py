"""kit.xmlsafe's parser of untrusted XML: what it refuses, and a DTD caught in UTF-16 too."""

from __future__ import annotations

import pytest

from kit.xmlsafe import UnsafeXml, parse_untrusted


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<a><b></a>",
        '<?xml version="1.0" encoding="UTF-16"?><r/>'.encode("utf-16"),
    ],
)
def test_parser_unit(body):
    if body.startswith(b"\xff\xfe") or body.startswith(b"\xfe\xff"):
        assert parse_untrusted(body, max_depth=32).getroot().tag == "r"  # UTF-16 with a BOM is fine
        return
    with pytest.raises(UnsafeXml):
        parse_untrusted(body, max_depth=32)


def test_utf16_doctype_is_caught():
    body = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'.encode("utf-16")
    with pytest.raises(UnsafeXml, match="DTD"):
        parse_untrusted(body, max_depth=32)
