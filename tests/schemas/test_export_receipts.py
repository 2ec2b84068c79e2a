"""Every export receipt swx writes (304 … 702) is valid under our export schema and, when the reference is
beside the project, under customs' official export.xsd: for realistic heads, for refused filings (no
preNo yet), and for heads that leave out what the receipt requires (invtNo, billNo, msgSeqNo …)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from lxml import etree

from schemas.catalog import EXPORT, MessageType
from schemas.loader import export_schema
from schemas.receipts import DocumentReturn, document_fields, receipt_xml
from tests.fixtures.ceb_official import OFFICIAL_EXPORT, official_schema

GUID = "4CDE1CFD-EDED-46B1-946C-B8022E42FC94"
PRE_NO = "E20240507000000123"
NOW = datetime(2024, 5, 7, 8, 30, tzinfo=UTC)

# Realistic heads, as intake reads them from a filing (only the fields a receipt may echo matter).
HEADS: dict[str, dict[str, str]] = {
    "303": {"guid": GUID, "orderNo": "EO2024050700001", "ebpCode": "3301960AB1", "ebcCode": "91110105MA01234567"},
    "403": {"guid": GUID, "ebpCode": "无", "ebcCode": "3301960AB1", "orderNo": "EO2024050700001", "payNo": "PAY-778812"},
    "505": {"guid": GUID, "logisticsCode": "3301960AB1", "logisticsNo": "SF1234567890123"},
    "507": {"guid": GUID, "operatorCode": "3301960AB3", "logisticsCode": "3301960AB1", "copNo": "ARR-2024-0007",
            "billNo": "MAWB-784-12345675", "msgCount": "2", "msgSeqNo": "2"},
    "509": {"guid": GUID, "logisticsCode": "3301960AB1", "copNo": "DEP-2024-0001", "msgCount": "1", "msgSeqNo": "1"},
    "603": {"guid": GUID, "agentCode": "3301960AB4", "copNo": "INV-2024-000042", "ebcCode": "3301960AB1",
            "ebpCode": "3301960AB2", "orderNo": "EO2024050700001", "statisticsFlag": "B"},
    "605": {"guid": GUID, "agentCode": "3301960AB4", "copNo": "CAN-2024-0001", "invtNo": "15002024E000000123"},
    "607": {"guid": GUID, "agentCode": "3301960AB4", "logisticsCode": "3301960AB1", "copNo": "WB-2024-0001",
            "billNo": "MAWB-784-12345675", "msgCount": "1", "msgSeqNo": "1"},
    "213": {"guid": GUID, "ebpCode": "3301960AB2", "ebcCode": "3301960AB1", "agentCode": "3301960AB4",
            "coElNo": "RET-2024-0001", "invtNo": "15002024E000000123"},
    "215": {"guid": GUID, "operatorCode": "3301960AB3", "logisticsCode": "3301960AB1",
            "logisticsNo": "INBOUND-" + "7" * 60, "coElNo": "TAL-2024-0001"},
    "701": {"guid": GUID, "agentCode": "3301960AB4", "ebcCode": "3301960AB1", "copNo": "SUM-2024-0001",
            "msgCount": "1", "msgSeqNo": "1"},
}
# What a head may lack that the receipt requires.
SPARSE: dict[str, tuple[str, ...]] = {
    "403": ("ebcCode", "orderNo", "payNo"),
    "507": ("billNo", "msgSeqNo", "logisticsCode"),
    "509": ("msgSeqNo",),
    "603": ("statisticsFlag", "invtNo", "ebpCode"),
    "605": ("invtNo",),
    "607": ("billNo", "msgSeqNo"),
    "213": ("invtNo", "ebpCode", "ebcCode"),
    "701": ("msgSeqNo",),
}


def _receipt(mtype: MessageType, head: dict[str, str], pre_no: str | None, status: str = "2") -> bytes:
    ret = DocumentReturn(document_fields(mtype, head, pre_no), status, "单一窗口已受理")
    return receipt_xml(mtype, [ret, ret], now=NOW).encode("utf-8")


def _cases() -> list[tuple[str, str, dict[str, str], str | None]]:
    cases = []
    for code, head in HEADS.items():
        cases.append((f"{code}-accepted", code, head, PRE_NO))
        cases.append((f"{code}-refused", code, head, None))
        if code in SPARSE:
            sparse = {k: v for k, v in head.items() if k not in SPARSE[code]}
            cases.append((f"{code}-sparse", code, sparse, None))
    cases.append(("701-with-sumNo", "701", {**HEADS["701"], "sumNo": "S20240507000000001"}, PRE_NO))
    cases.append(("603-overlong-and-padded", "603", {**HEADS["603"], "copNo": "C" * 40, "invtNo": "I" * 25,
                                                     "statisticsFlag": " A "}, PRE_NO))
    return cases


CASES = _cases()


def test_every_export_message_has_a_case() -> None:
    assert set(HEADS) == set(EXPORT)


@pytest.mark.parametrize(("code", "head", "pre_no"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_export_receipt_valid(code: str, head: dict[str, str], pre_no: str | None) -> None:
    mtype = EXPORT[code]
    data = _receipt(mtype, head, pre_no)
    tree = etree.parse(io.BytesIO(data))
    assert etree.QName(tree.getroot()).localname == mtype.receipt_root
    ours = export_schema()
    assert ours.validate(tree), f"{mtype.receipt_root} invalid under ours:\n{ours.error_log}\n{data.decode()}"
    if OFFICIAL_EXPORT.exists():
        official = official_schema("export")
        assert official.validate(tree), f"{mtype.receipt_root} invalid under official:\n{official.error_log}\n{data.decode()}"


def test_export_receipt_fill_rules() -> None:
    refused = document_fields(EXPORT["603"], {k: v for k, v in HEADS["603"].items() if k != "statisticsFlag"}, None)
    assert refused["preNo"] == "0" * 18 and refused["invtNo"] == "" and refused["statisticsFlag"] == "B"
    arrival = document_fields(EXPORT["507"], {"guid": GUID}, None)
    assert arrival["billNo"] == "" and arrival["msgSeqNo"] == "1"
    refund = document_fields(EXPORT["213"], {"guid": GUID, "agentCode": "A", "coElNo": "C"}, None)
    assert "preNo" not in refund and "ebpCode" not in refund and refund["invtNo"] == ""
    assert document_fields(EXPORT["701"], HEADS["701"], PRE_NO).get("sumNo") is None
    # import receipts keep their rules
    from schemas.catalog import FILED

    assert document_fields(FILED["621"], {"guid": GUID, "orderNo": "O1"}, None)["preNo"] == "0" * 18
