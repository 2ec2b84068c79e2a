"""The quick paths of the intake checks decide as the plain ones did: real times, ID check digits, the
fields read from the schema, xsi:type however spelt, depth and DTDs (no server needed)."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from lxml import etree

from gateway.intake.rules import is_real_time
from gateway.intake.validate import check
from kit.xmlsafe import UnsafeXml, parse_untrusted
from schemas.builder import MessageBuilder, Party
from schemas.catalog import BY_KIND, IMPORT
from schemas.documents import schema_fields
from schemas.fields import FIELDS
from schemas.identifiers import id_check_char, is_valid_id_number
from schemas.loader import ceb_schema
from tests.fixtures.intake import BAD_CHECK_ID, ORDER, VALID_ID

# --- the quick paths of the checks decide as the plain ones did (no server needed) ------------------


SENDER = Party("3301960AB1", "基准测试电子商务有限公司", "DXPENT3301960AB1")
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _strptime_says(text: str, fmt: str, width: int) -> bool:
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        return False
    return len(text) == width


@pytest.mark.parametrize("text", [
    "20240229235959", "20230229120000", "20240230120000", "20230431000000", "20231301080000", "20230001080000",
    "20230100080000", "20230132080000", "20230101240000", "20230101236000", "20230101235960", "20230101235961",
    "00000101120000", "00010101000000", "99991231235959", "2023010112000", "202301011200000", " 20230101120000",
    "2023010 1120000", "٢٠٢٣٠١٠١١٢٠٠٠٠", "2023-01-01T12:", "20240229", "20230229", "20230231", "00000101",
    "2023 101", "2023011 ", "202301٠1", "",
])
def test_real_time_agrees_with_strptime(text):
    for fmt, width in (("%Y%m%d%H%M%S", 14), ("%Y%m%d", 8)):
        assert is_real_time(text, fmt, width) is _strptime_says(text, fmt, width), (text, fmt)


def test_real_time_agrees_with_strptime_on_every_boundary():
    for year in ("0000", "0001", "1900", "2000", "2023", "2024"):
        for month in range(14):
            for day in range(33):
                ymd = f"{year}{month:02d}{day:02d}"
                assert is_real_time(ymd, "%Y%m%d", 8) is _strptime_says(ymd, "%Y%m%d", 8), ymd
                for hms in ("000000", "235959", "240000", "236000", "235960", "995999"):
                    text = ymd + hms
                    assert is_real_time(text, "%Y%m%d%H%M%S", 14) is _strptime_says(text, "%Y%m%d%H%M%S", 14), text


def test_id_check_digit_quick_path_agrees_with_the_weights():
    rng = random.Random(5)
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    for _ in range(2000):
        body = "".join(rng.choice("0123456789") for _ in range(17))
        assert id_check_char(body) == "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
    assert id_check_char("11010519491231002") == "X" and is_valid_id_number(VALID_ID)
    assert id_check_char(VALID_ID) == "X"  # 18 characters: the 18th is not read, as before
    assert not is_valid_id_number(BAD_CHECK_ID) and not is_valid_id_number(VALID_ID + "\n1")
    assert is_valid_id_number(VALID_ID + "\n")  # the shape regex's $ takes a final newline, as before
    assert is_valid_id_number("١" + VALID_ID[1:]) is is_valid_id_number("1" + VALID_ID[1:])  # other digits too


def test_schema_fields_are_read_from_the_schema():
    for mtype in IMPORT.values():  # export: tests/schemas (its field tables are keyed by direction)
        head, lines = schema_fields(mtype)
        assert head == {f.name for f in FIELDS[mtype.head]}, mtype.kind
        assert lines == ({f.name for f in FIELDS[mtype.lines]} if mtype.lines else frozenset()), mtype.kind


def _order_message(**head) -> bytes:
    b = MessageBuilder(99)
    return b.message("311", [b.order(b.parties(), lines=2, **head)], sender=SENDER)


@pytest.mark.parametrize("app_time", ["20230101235960", "00000101120000", "20240230120000", "20230101240000"])
def test_impossible_app_time_is_still_found(app_time):
    found = check(_order_message(appTime=app_time), max_depth=32, cop_code=SENDER.code).findings
    assert [(f.code, f.path) for f in found] == [(ORDER.check_code, "/ceb:CEB311Message/ceb:Order/ceb:OrderHead/ceb:appTime")]


def _with_xsi_type(body: bytes, encoding: str, declaration: str = f'xmlns:xsi="{XSI}"') -> bytes:
    text = body.decode().split("?>", 1)[1]
    text = text.replace("<ceb:freight>", f'<ceb:freight {declaration} xsi:type="ceb:Amount">', 1)
    return (f'<?xml version="1.0" encoding="{encoding}"?>' + text).encode(encoding)


@pytest.mark.parametrize("encoding, declaration", [
    ("UTF-8", f'xmlns:xsi="{XSI}"'), ("GBK", f'xmlns:xsi="{XSI}"'), ("UTF-16", f'xmlns:xsi="{XSI}"'),
    ("UTF-8", f'xmlns:xsi="{XSI.replace("-", "&#45;")}"'), ("GB18030", f'xmlns:xsi="{XSI.replace("/", "&#x2F;")}"'),
])
def test_xsi_type_is_found_however_spelt(encoding, declaration):
    found = check(_with_xsi_type(_order_message(), encoding, declaration), max_depth=32, cop_code=SENDER.code).findings
    xsi = [f for f in found if f.message == "xsi:type is not allowed in CEB messages"]
    assert [f.path for f in xsi] == ["/ceb:CEB311Message/ceb:Order/ceb:OrderHead/ceb:freight"], found


def test_a_valid_message_is_still_depth_checked_where_the_schema_does_not_bound_it():
    body = _order_message()
    assert not check(body, max_depth=32, cop_code=SENDER.code).findings
    with pytest.raises(UnsafeXml, match="nested deeper than 3 levels"):
        check(body, max_depth=3, cop_code=SENDER.code)  # shallower than the schema's 4 levels
    deep = b"<x>" * 40 + b"</x>" * 40
    extension = (b"<ceb:ExtendMessage><ceb:name>n</ceb:name><ceb:version>1</ceb:version><ceb:Message>"
                 + deep + b"</ceb:Message></ceb:ExtendMessage>")
    extended = body.replace(b"</ceb:BaseTransfer>", b"</ceb:BaseTransfer>" + extension)
    assert ceb_schema().validate(etree.fromstring(extended))  # valid, and deeper than anything else
    with pytest.raises(UnsafeXml, match="nested deeper than 32 levels") as exc:
        check(extended, max_depth=32, cop_code=SENDER.code)
    assert exc.value.line is not None
    invalid = body.replace(b"<ceb:freight>", b"<ceb:freight>" + deep)
    with pytest.raises(UnsafeXml, match="nested deeper than 32 levels"):
        check(invalid, max_depth=32, cop_code=SENDER.code)


def test_a_doctype_without_a_bang_byte_is_still_refused():
    # UTF-7 spells "<!" in Base64: no "!" byte, no "<!DOCTYPE" bytes; libxml2 still reads a DTD.
    body = (b'<?xml version="1.0" encoding="UTF-7"?>+ADwAIQ-DOCTYPE r +AFs-+ADwAIQ-ENTITY x +ACI-y+ACIAPgBd-+AD4-'
            b"<r>+ACY-x;</r>")
    assert b"!" not in body
    with pytest.raises(UnsafeXml, match="DTD"):
        parse_untrusted(body, max_depth=32)
    late = b"<?xml version='1.0'?>" + b"<?pi " + b"x" * 9000 + b"?><!DOCTYPE r><r/>"  # past the first 8 KiB
    with pytest.raises(UnsafeXml, match="DTD"):
        parse_untrusted(late, max_depth=32)
