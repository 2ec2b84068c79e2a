"""The tax stand-in's decisions as pure functions: the assessment of a list (VAT, consumption tax,
tariff over the limit, freight and insured fee shared out) and the tax bill it sends."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from lxml import etree

from mock_customs.tax import assess, parse_rates, shortfall_note, tax_bill_xml
from schemas.builder import CONSUMPTION_TAX, MessageBuilder, retail_tax
from tests.fixtures.regulators import LIMIT, C, _line, _valid


def _head(freight: str = "0", insured: str = "0", **extra: str) -> dict[str, str]:
    return {"freight": freight, "insuredFee": insured, **extra}


# --- tax: the assessment ---------------------------------------------------------------------


def test_plain_goods_are_taxed_at_9_1_percent_of_goods_and_freight(rates):
    a = assess(_head("10"), [_line(1, "3401300000", "200.00")], rates, LIMIT)
    assert a.within_limit and a.base == D("210.00")
    assert (a.customs_tax, a.value_added_tax, a.consumption_tax) == (D("0.00"), D("19.11"), D("0.00"))
    assert a.lines[0].tax_price == D("210.00")


def test_high_end_cosmetics_carry_consumption_tax_and_cheap_ones_do_not(rates):
    # 30 ml for CNY 600: CNY 20 per ml, over the CNY 10 high-end threshold → 15 % consumption tax.
    serum = _line(1, "3304990099", "600.00", qty1="0.03", unit1="035")
    a = assess(_head(), [serum], rates, LIMIT)
    # total 600 × (0.15 + 0.13) / 0.85 × 0.7 = 138.3529…; consumption 600 × 0.15 / 0.85 × 0.7 = 74.1176…
    assert a.total == D("138.35")
    assert a.consumption_tax == D("74.12") and a.value_added_tax == D("64.23") and a.customs_tax == 0
    assert a.lines[0].consumption_rate == D("0.15")
    cream = _line(1, "3304990099", "200.00", qty1="0.065", unit1="035")  # about CNY 3 per ml
    b = assess(_head(), [cream], rates, LIMIT)
    assert (b.total, b.consumption_tax) == (D("18.20"), D("0.00"))


def test_over_the_per_transaction_limit_full_tax_applies(rates):
    bag = _line(1, "4202210090", "5200.00")
    a = assess(_head("20"), [bag], rates, LIMIT)
    # tariff 5220 × 6 % = 313.20; VAT (5220 + 313.20) × 13 % = 719.316
    assert not a.within_limit
    assert (a.customs_tax, a.value_added_tax, a.consumption_tax) == (D("313.20"), D("719.32"), D("0.00"))
    watch = _line(1, "9102110000", "12000.00")
    w = assess(_head(), [watch], rates, LIMIT)
    # tariff 960; consumption (12000 + 960) / 0.8 × 0.2 = 3240; VAT 16200 × 0.13 = 2106
    assert (w.customs_tax, w.consumption_tax, w.value_added_tax) == (D("960.00"), D("3240.00"), D("2106.00"))


def test_the_order_value_decides_the_limit_when_known(rates):
    line = _line(1, "3401300000", "4900.00")
    assert assess(_head(), [line], rates, LIMIT).within_limit
    full = assess(_head(), [line], rates, LIMIT, order_value=D("5300.00"))
    assert not full.within_limit and full.customs_tax == D("318.50")  # 4900 × 6.5 %


def test_freight_and_insured_fee_are_shared_in_proportion_to_line_value(rates):
    lines = [_line(1, "3401300000", "300.00"),
             _line(2, "2204210000", "100.00", qty1="0.75", unit1="095")]  # wine: 10 % consumption tax
    a = assess(_head("30", "10"), lines, rates, LIMIT)
    assert [lt.tax_price for lt in a.lines] == [D("330.00"), D("110.00")]
    # 330 × 9.1 % = 30.03; 110 × (0.1 + 0.13) / 0.9 × 0.7 = 19.6778; consumption 110 × 0.1 / 0.9 × 0.7 = 8.5556
    assert (a.total, a.consumption_tax, a.value_added_tax) == (D("49.71"), D("8.56"), D("41.15"))
    assert [lt.value_added_tax for lt in a.lines] == [D("30.03"), D("11.12")]
    assert [lt.consumption_tax for lt in a.lines] == [D("0.00"), D("8.56")]
    assert a.total == retail_tax([(D(300), "3401300000"), (D(100), "2204210000")], D(30), D(10))


def test_books_take_the_reduced_vat_rate(rates):
    a = assess(_head(), [_line(1, "4901990000", "100.00")], rates, LIMIT)
    assert a.total == D("6.30")  # 100 × 9 % × 70 %


def test_rates_agree_with_the_builder_catalogue(rates):
    for gcode, rate in CONSUMPTION_TAX.items():
        assert rates.consumption_rate(_line(1, gcode, "300", qty1="0.75", unit1="095")) == rate
    assert parse_rates({}).vat_rate("3401300000") == D("0.13")


def test_assessment_agrees_with_the_builder_for_in_limit_lists(rates):
    b = MessageBuilder(seed=606)
    parties = b.parties()
    for i in range(120):
        d = b.declaration(parties, lines=i % 6 + 1)
        inv, order = d["inventory"], d["order"]
        a = assess(inv.head, inv.lines, rates, LIMIT, order_value=D(order.head["acturalPaid"]))
        assert a.within_limit
        expected = retail_tax([(D(x["totalPrice"]), x["gcode"]) for x in inv.lines],
                              D(inv.head["freight"]), D(inv.head["insuredFee"]))
        assert a.total == expected == D(order.head["taxTotal"])
        # the lines add up to the head
        assert sum(lt.value_added_tax + lt.consumption_tax for lt in a.lines) == a.total
        assert sum(lt.tax_price for lt in a.lines) == a.base


def test_tax_bill_validates_and_keeps_schema_order(rates):
    b = MessageBuilder(seed=7)
    inv = b.declaration(b.parties(), lines=3)["inventory"]
    a = assess(inv.head, inv.lines, rates, LIMIT)
    head = dict(inv.head, invtNo=b.invt_no(inv))
    note = shortfall_note(D("0.01"), a)
    assert note == f"taxTotal short: declared 0.01, assessed {a.total:.2f}"
    root = _valid(tax_bill_xml(head, inv.lines, a, note=note))
    rd = root.find(f"{C}Tax/{C}TaxHeadRd")
    assert [etree.QName(e).localname for e in rd] == [
        "guid", "returnTime", "invtNo", "taxNo", "customsTax", "valueAddedTax", "consumptionTax", "status",
        "note", "assureCode", "ebcCode", "logisticsCode", "agentCode", "customsCode"]
    assert rd.findtext(f"{C}invtNo") == head["invtNo"] and rd.findtext(f"{C}taxNo") == head["invtNo"] + "01"
    assert rd.findtext(f"{C}status") == "1" and rd.findtext(f"{C}note") == note
    items = root.findall(f"{C}Tax/{C}TaxListRd")
    assert [x.findtext(f"{C}gnum") for x in items] == ["1", "2", "3"]
    assert [etree.QName(e).localname for e in items[0]] == [
        "gnum", "gcode", "taxPrice", "customsTax", "valueAddedTax", "consumptionTax"]
    assert shortfall_note(a.total, a) is None
    with pytest.raises(ValueError):
        tax_bill_xml(inv.head, inv.lines, a)  # no invtNo yet
