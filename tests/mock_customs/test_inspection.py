"""The inspection stand-in's decisions as pure functions: goods screened against its table (cleared,
held, refused by prefix or keyword) and the receipt it sends."""

from __future__ import annotations

import pytest

from mock_customs.inspection import inspection_receipt, load_table, parse_table, screen
from schemas.builder import MessageBuilder
from tests.fixtures.regulators import C, _line, _valid

# --- inspection: the screening -----------------------------------------------------------------


@pytest.fixture(scope="module")
def table():
    return load_table()


def test_screening_clears_goods_off_the_table(table):
    s = screen([_line(1, "4202210090", "1280", gname="卡维拉头层牛皮手提包")], table)
    assert s.decision == "clear" and s.verdict() == ("399", "inspection: cleared")


def test_screening_holds_restricted_goods(table):
    s = screen([_line(1, "4202210090", "1280"), _line(2, "1901101000", "298", gname="牧语婴幼儿配方奶粉1段")], table)
    status, info = s.verdict()
    assert status == "500"
    assert info.startswith("inspection: held for inspection: line 2 gcode 1901101000 (牧语婴幼儿配方奶粉1段): infant formula")


def test_screening_refuses_prohibited_goods_by_prefix_and_by_keyword(table):
    by_prefix = screen([_line(1, "0106190090", "500", gname="宠物仓鼠")], table)
    status, info = by_prefix.verdict()
    assert status == "100" and info.startswith("-621501 inspection: prohibited goods: line 1 gcode 0106190090 (宠物仓鼠)")
    assert "live animals" in info
    # a keyword in the goods name wins over a restricted prefix (toys)
    by_keyword = screen([_line(1, "3304990099", "99"), _line(2, "9503008900", "199", gname="金属仿真枪模型")], table)
    assert by_keyword.decision == "prohibited"
    status, info = by_keyword.verdict()
    assert status == "100" and "line 2 gcode 9503008900 (金属仿真枪模型): weapons" in info
    assert "line 1" not in info  # the refusal names the prohibited line only


def test_table_prefixes_ignore_dots_and_need_something_to_match():
    entries = parse_table({"restricted": [{"prefixes": ["1901.10"], "reason": "formula"}]})
    assert screen([_line(1, "1901101000", "1")], entries).decision == "restricted"
    assert screen([_line(1, "1901900000", "1")], entries).decision == "clear"
    with pytest.raises(ValueError):
        parse_table({"prohibited": [{"reason": "nothing"}]})


def test_inspection_receipt_validates_and_echoes_the_list(table):
    b = MessageBuilder(seed=11)
    inv = b.declaration(b.parties())["inventory"]
    root = _valid(inspection_receipt([(inv.head, "399", "inspection: cleared")]))
    node = root.find(f"{C}InventoryReturn")
    assert node.findtext(f"{C}guid") == inv.head["guid"]
    assert node.findtext(f"{C}preNo") == "0" * 18
    assert node.findtext(f"{C}copNo") == (inv.head.get("copNo") or inv.head["orderNo"])[:20]
