"""The FX stand-in's decisions as pure functions: a payer's year of payments against the annual quota,
changes and deletions."""

from __future__ import annotations

from decimal import Decimal as D

from mock_customs.fx import FLAGGED, FxLedger

# --- fx: the ledger ---------------------------------------------------------------------------


def _pay(tx: str, cny: str, *, payer: str = "11010519491231002X", when: str = "20240315101500",
         app_type: str = "1") -> dict[str, str]:
    return {"guid": "G" * 36, "appType": app_type, "payCode": "3301960001", "payTransactionId": tx,
            "payerIdNumber": payer, "amountPaid": cny, "payTime": when}


def test_fx_accumulates_a_payers_year_against_the_quota():
    ledger = FxLedger(D("7.10"), D(50000))
    first = ledger.record(_pay("T1", "200000.00"))
    assert first.status == "120" and first.year_total_usd == D("28169.01")
    assert first.info == "fx: recorded (payer year total USD 28,169.01)"
    assert ledger.record(_pay("T2", "150000.00")).year_total_usd == D("49295.77")
    over = ledger.record(_pay("T3", "10000.00"))
    assert over.status == FLAGGED and over.year_total_usd == D("50704.22")
    assert over.info == "fx: payer annual quota exceeded: 50,704.22 USD of 50,000"
    # another payer and another year each start from nothing
    assert ledger.record(_pay("T4", "710.00", payer="110105194912310021")).year_total_usd == D("100.00")
    next_year = ledger.record(_pay("T5", "7100.00", when="20250102090000"))
    assert next_year.status == "120" and next_year.year_total_usd == D("1000.00")


def test_fx_change_replaces_and_delete_removes_a_payment():
    ledger = FxLedger(D("7.10"), D(50000))
    ledger.record(_pay("T1", "200000.00"))
    ledger.record(_pay("T2", "150000.00"))
    assert ledger.record(_pay("T3", "10000.00")).status == FLAGGED
    changed = ledger.record(_pay("T3", "1000.00", app_type="2"))
    assert changed.status == "120" and changed.year_total_usd == D("49436.62")
    assert ledger.record(_pay("T1", "200000.00")).year_total_usd == D("49436.62")  # a repeat does not count twice
    gone = ledger.record(_pay("T2", "", app_type="3"))
    assert gone.status == "120" and gone.year_total_usd == D("28309.86")
    assert ledger.record(_pay("T9", "", app_type="3")).info.startswith("fx: no such payment")
