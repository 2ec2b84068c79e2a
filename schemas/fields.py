"""Field lists of the CEB nodes: names in schema order, whether each is required, its size.

These are facts of the 2022-05 standard (CEB.md; the official ``import.xsd`` and ``export.xsd`` are
the authority), written out by hand so the builder, the rules and the receipt writer agree on order
without parsing the XSD at run time. Import and export reuse node names (``OrderHead``,
``InventoryHead``…) with other content, so the export nodes have a table of their own,
``EXPORT_FIELDS``, reached with ``direction="export"``; without it every lookup is the import one.

``kind`` is ``"str"`` (text, ``max_len`` characters at most, or exactly that many when ``exact``),
``"dec"`` (decimal N19,5: 19 digits, 5 of them after the point) or ``"int"``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    required: bool = True
    max_len: int | None = None  # None: unbounded text, or a number
    exact: bool = False  # the length is fixed (C36 guid, C14 time, 3-digit codes)
    kind: str = "str"  # "str" | "dec" | "int"


# Short constructors keep the tables one line per field.
def _s(name: str, n: int | None) -> Field:  # required text, 1..n
    return Field(name, True, n)


def _o(name: str, n: int | None) -> Field:  # optional text, 0..n
    return Field(name, False, n)


def _c(name: str, n: int, required: bool = True) -> Field:  # text of exactly n characters
    return Field(name, required, n, exact=True)


def _d(name: str, required: bool = True) -> Field:  # decimal N19,5
    return Field(name, required, None, kind="dec")


def _i(name: str) -> Field:
    return Field(name, True, None, kind="int")


# Every business head starts with the same four fields.
_APP = (_c("guid", 36), _c("appType", 1), _c("appTime", 14), _s("appStatus", 3))
_EBP_EBC = (_s("ebpCode", 18), _s("ebpName", 100), _s("ebcCode", 18), _s("ebcName", 100))
_LOGISTICS = (_s("logisticsNo", 60), _s("logisticsCode", 18), _s("logisticsName", 100))
_BUYER = (_c("buyerIdType", 1), _s("buyerIdNumber", 60), _s("buyerName", 60), _s("buyerTelephone", 30))
_RETURN = (_s("returnStatus", 10), _c("returnTime", 17), _s("returnInfo", 1000))

FIELDS: dict[str, tuple[Field, ...]] = {
    # --- filed documents -------------------------------------------------------------------
    "OrderHead": (
        *_APP, _c("orderType", 1), _s("orderNo", 60), *_EBP_EBC,
        _d("goodsValue"), _d("freight"), _d("discount"), _d("taxTotal"), _d("acturalPaid"),
        _c("currency", 3), _s("buyerRegNo", 60), _s("buyerName", 60), _s("buyerTelephone", 30),
        _c("buyerIdType", 1), _s("buyerIdNumber", 60),
        _o("payCode", 18), _o("payName", 100), _o("payTransactionId", 60), _o("batchNumbers", 100),
        _s("consignee", 100), _s("consigneeTelephone", 50), _s("consigneeAddress", 200),
        _c("consigneeDistrict", 6, required=False), _o("note", 1000),
    ),
    "OrderList": (
        _i("gnum"), _o("itemNo", 30), _s("itemName", 250), _s("gmodel", 510), _o("itemDescribe", 1000),
        _o("barCode", 50), _c("unit", 3), _d("qty"), _d("price"), _d("totalPrice"), _c("currency", 3),
        _c("country", 3), _o("note", 1000),
    ),
    "PaymentHead": (
        *_APP, _s("payCode", 18), _s("payName", 100), _s("payTransactionId", 60), _s("orderNo", 60),
        _s("ebpCode", 18), _s("ebpName", 100), _c("payerIdType", 1), _s("payerIdNumber", 60),
        _s("payerName", 60), _o("telephone", 60), _d("amountPaid"), _c("currency", 3), _c("payTime", 14),
        _o("note", 1000),
    ),
    "LogisticsHead": (
        *_APP, _s("logisticsCode", 18), _s("logisticsName", 100), _s("logisticsNo", 60), _o("billNo", 37),
        _s("orderNo", 60), _d("freight", False), _d("insuredFee", False), _c("currency", 3), _d("weight"),
        _i("packNo"), _o("goodsInfo", 200), _s("consignee", 100), _s("consigneeAddress", 200),
        _s("consigneeTelephone", 50), _o("note", 1000),
    ),
    "LogisticsStatus": (
        *_APP, _s("logisticsCode", 18), _s("logisticsName", 100), _s("logisticsNo", 60),
        _c("logisticsStatus", 1), _c("logisticsTime", 14), _o("note", 1000),
    ),
    "InventoryHead": (
        *_APP, _s("orderNo", 60), *_EBP_EBC, *_LOGISTICS, _o("copNo", 20), _o("preNo", 18),
        _s("assureCode", 30), _o("emsNo", 30), _o("invtNo", 18), _c("ieFlag", 1), _c("declTime", 8),
        _c("customsCode", 4), _c("portCode", 4), _c("ieDate", 8, required=False), *_BUYER,
        _s("consigneeAddress", 200), _s("agentCode", 18), _s("agentName", 100), _o("areaCode", 18),
        _o("areaName", 100), _c("tradeMode", 4), _c("trafMode", 1), _o("trafNo", 100), _o("voyageNo", 32),
        _o("billNo", 37), _o("loctNo", 10), _o("licenseNo", 19), _c("country", 3), _d("freight"),
        _d("insuredFee"), _c("currency", 3), _c("wrapType", 1, required=False), _i("packNo"),
        _d("grossWeight"), _d("netWeight"), _o("note", 1000),
    ),
    "InventoryList": (
        _i("gnum"), _o("itemRecordNo", 30), _o("itemNo", 20), _o("itemName", 250), _c("gcode", 10),
        _s("gname", 250), _s("gmodel", 510), _o("barCode", 50), _c("country", 3),
        _o("tradeCountry", 3), _c("currency", 3), _d("qty"), _c("unit", 3), _d("qty1"),
        _c("unit1", 3), _d("qty2", False), _c("unit2", 3, required=False), _d("price"), _d("totalPrice"),
        _o("note", 1000),
    ),
    "InvtCancel": (
        *_APP, _c("customsCode", 4), _s("orderNo", 60), *_EBP_EBC, *_LOGISTICS, _o("copNo", 20),
        _o("preNo", 18), _s("invtNo", 18), *_BUYER, _s("agentCode", 18), _s("agentName", 100),
        _s("reason", 1000), _o("note", 1000),
    ),
    "InvtRefundHead": (
        *_APP, _c("customsCode", 4), _s("orderNo", 60), *_EBP_EBC, *_LOGISTICS, _o("copNo", 20),
        _o("preNo", 18), _s("invtNo", 18), *_BUYER, _s("agentCode", 18), _s("agentName", 100),
        _s("reason", 1000), _o("note", 1000),
    ),
    "InvtRefundList": (
        _i("gnum"), _c("gcode", 10), _s("gname", 250), _d("qty"), _c("unit", 3), _o("note", 1000),
    ),
    "DeliveryHead": (
        *_APP, _c("customsCode", 4), _o("copNo", 20), _o("preNo", 18), _o("rkdNo", 18),
        _s("operatorCode", 18), _s("operatorName", 100), _c("ieFlag", 1), _c("trafMode", 1),
        _s("trafNo", 100), _s("voyageNo", 32), _s("billNo", 37), _s("logisticsCode", 18),
        _s("logisticsName", 100), _o("unloadLocation", 100), _o("note", 1000),
    ),
    "DeliveryList": (_i("gnum"), _s("logisticsNo", 60), _o("note", 1000)),
    # copName is "maxLength 100" without a minimum in the XSD; we still always fill it.
    "BaseTransfer": (
        _s("copCode", 18), _s("copName", 100), _c("dxpMode", 3), _s("dxpId", 30),
        _o("note", 1000),
    ),
    "BaseSubscribe": (_s("status", 100), _c("dxpMode", 3), _s("dxpAddress", 100), _o("note", 1000)),
    # --- receipts (customs -> enterprise) --------------------------------------------------
    "OrderReturn": (_c("guid", 36), _s("ebpCode", 18), _s("ebcCode", 18), _s("orderNo", 60), *_RETURN),
    "PaymentReturn": (_c("guid", 36), _s("payCode", 18), _s("payTransactionId", 60), *_RETURN),
    "LogisticsReturn": (_c("guid", 36), _s("logisticsCode", 18), _s("logisticsNo", 60), *_RETURN),
    "LogisticsStatusReturn": (
        _c("guid", 36), _s("logisticsCode", 18), _s("logisticsNo", 60), _c("logisticsStatus", 1), *_RETURN,
    ),
    "InventoryReturn": (
        _c("guid", 36), _c("customsCode", 4, required=False), _o("ebpCode", 18),
        _o("ebcCode", 18), _o("agentCode", 18), _s("copNo", 20), _c("preNo", 18),
        _c("invtNo", 18, required=False), *_RETURN,
    ),
    "InvtCancelReturn": (
        _c("guid", 36), _c("customsCode", 4, required=False), _o("agentCode", 18),
        _o("ebpCode", 18), _o("ebcCode", 18), _s("copNo", 20), _c("preNo", 18),
        _c("invtNo", 18, required=False), *_RETURN,
    ),
    "InvtRefundReturn": (
        _c("guid", 36), _c("customsCode", 4, required=False), _o("agentCode", 18),
        _o("ebpCode", 18), _o("ebcCode", 18), _s("copNo", 20), _c("preNo", 18),
        _c("invtNo", 18, required=False), *_RETURN,
    ),
    "DeliveryReturn": (
        _c("guid", 36), _c("customsCode", 4, required=False), _o("operatorCode", 18),
        _o("copNo", 20), _o("preNo", 18), _o("rkdNo", 18), *_RETURN,
    ),
    # MessageReturn's text fields may be empty (minLength 0) but must be present.
    "MessageReturn": (
        _c("guid", 36), _s("returnStatus", 10), _s("returnInfo", 5000), _c("returnTime", 17),
        _s("oriCopMsgId", 255), _s("oriMessageType", 15), _s("oriBizMessage", None),
    ),
    "TaxHeadRd": (
        _c("guid", 36), _c("returnTime", 17), _s("invtNo", 18), _s("taxNo", 50), _d("customsTax"),
        _d("valueAddedTax"), _d("consumptionTax"), _c("status", 1), _o("entDutyNo", 50), _o("note", 1000),
        _o("assureCode", 64), _o("ebcCode", 64), _o("logisticsCode", 64), _o("agentCode", 18),
        _c("customsCode", 4, required=False),
    ),
    "TaxListRd": (
        _i("gnum"), _c("gcode", 10), _d("taxPrice"), _d("customsTax"), _d("valueAddedTax"), _d("consumptionTax"),
    ),
}


# Export heads share the four application fields too, but appStatus is exactly one character there.
_X_APP = (_c("guid", 36), _c("appType", 1), _c("appTime", 14), _c("appStatus", 1))

# The export nodes (CEB.md §8; official ``export.xsd``). Filed documents only, plus 792, which customs
# issues; the receipts (304…702) are written elsewhere.
EXPORT_FIELDS: dict[str, tuple[Field, ...]] = {
    "OrderHead": (
        *_X_APP, _c("orderType", 1), _s("orderNo", 60), _s("ebpCode", 18), _s("ebpName", 100), _s("ebcCode", 18),
        _s("ebcName", 100), _d("goodsValue"), _d("freight"), _c("currency", 3), _o("note", 1000),
    ),
    "OrderList": (
        _i("gnum"), _s("itemNo", 30), _s("itemName", 250), _o("itemDescribe", 1000), _o("barCode", 50),
        _c("unit", 3), _c("currency", 3), _d("qty"), _d("price"), _d("totalPrice"), _o("note", 1000),
    ),
    "Receipts": (
        *_X_APP, _s("ebpCode", 18), _s("ebpName", 100), _s("ebcCode", 18), _s("ebcName", 100), _s("orderNo", 60),
        _o("payCode", 18), _s("payName", 100), _o("payNo", 60), _d("charge"), _c("currency", 3),
        _c("accountingDate", 14), _o("note", 1000),
    ),
    "Logistics": (
        *_X_APP, _s("logisticsCode", 18), _s("logisticsName", 100), _s("logisticsNo", 32), _d("freight"),
        _d("insuredFee"), _c("currency", 3), _d("grossWeight"), _i("packNo"), _s("goodsInfo", 200),
        _o("ebcCode", 18), _o("ebcName", 100), _o("ebcTelephone", 50), _o("note", 1000),
    ),
    "ArrivalHead": (
        *_X_APP, _c("customsCode", 4), _s("copNo", 30), _c("preNo", 18, required=False), _s("operatorCode", 18),
        _s("operatorName", 100), _o("loctNo", 10), _c("ieFlag", 1), _c("trafMode", 1), _o("billNo", 37),
        _s("domesticTrafNo", 100), _s("logisticsCode", 18), _s("logisticsName", 100), _i("msgCount"), _i("msgSeqNo"),
        _o("note", 1000),
    ),
    "ArrivalList": (
        _i("gnum"), _s("logisticsNo", 32), _o("totalPackageNo", 37), _o("note", 1000),
    ),
    "DepartureHead": (
        *_X_APP, _c("customsCode", 4), _s("copNo", 30), _c("preNo", 18, required=False), _s("logisticsCode", 18),
        _s("logisticsName", 100), _c("trafMode", 1), _o("trafName", 100), _o("voyageNo", 32), _o("billNo", 37),
        _c("leaveTime", 14), _i("msgCount"), _i("msgSeqNo"), _o("note", 1000),
    ),
    "DepartureList": (
        _i("gnum"), _o("totalPackageNo", 37), _s("logisticsNo", 32), _o("note", 1000),
    ),
    "InventoryHead": (
        *_X_APP, _c("customsCode", 4), _s("ebpCode", 18), _s("ebpName", 100), _s("orderNo", 60),
        _s("logisticsCode", 18), _s("logisticsName", 100), _s("logisticsNo", 32), _s("copNo", 30),
        _c("preNo", 18, required=False), _o("invtNo", 20), _c("ieFlag", 1), _c("portCode", 4), _c("ieDate", 8),
        _c("statisticsFlag", 1), _s("agentCode", 18), _s("agentName", 100), _s("ebcCode", 18), _s("ebcName", 100),
        _s("ownerCode", 18), _s("ownerName", 100), _o("iacCode", 18), _o("iacName", 100), _o("emsNo", 30),
        _c("tradeMode", 4), _c("trafMode", 1), _o("trafName", 100), _o("voyageNo", 32), _o("billNo", 37),
        _o("totalPackageNo", 37), _o("loctNo", 10), _o("licenseNo", 19), _c("country", 3), _s("POD", 4),
        _d("freight"), _c("fCurrency", 3), _c("fFlag", 1), _d("insuredFee"), _c("iCurrency", 3), _c("iFlag", 1),
        _c("wrapType", 1), _i("packNo"), _d("grossWeight"), _d("netWeight"), _o("note", 1000),
    ),
    "InventoryList": (
        _i("gnum"), _s("itemNo", 20), _o("itemRecordNo", 30), _o("itemName", 250), _c("gcode", 10), _s("gname", 250),
        _s("gmodel", 250), _s("barCode", 50), _c("country", 3), _c("currency", 3), _d("qty"), _d("qty1"),
        _d("qty2", False), _c("unit", 3), _c("unit1", 3), _o("unit2", 3), _d("price"), _d("totalPrice"),
        _o("note", 1000),
    ),
    "InvtCancel": (
        *_X_APP, _c("customsCode", 4), _s("copNo", 30), _c("preNo", 18, required=False), _s("invtNo", 20),
        _s("reason", 1000), _s("agentCode", 18), _s("agentName", 100), _s("ebcCode", 18), _s("ebcName", 100),
        _o("note", 1000),
    ),
    "WayBillHead": (
        *_X_APP, _c("customsCode", 4), _s("copNo", 30), _c("preNo", 18, required=False), _s("agentCode", 18),
        _s("agentName", 100), _o("loctNo", 10), _c("trafMode", 1), _s("trafName", 100), _s("voyageNo", 32),
        _s("billNo", 37), _o("domesticTrafNo", 100), _d("grossWeight"), _s("logisticsCode", 18),
        _s("logisticsName", 100), _i("msgCount"), _i("msgSeqNo"), _o("note", 1000),
    ),
    "WayBillList": (
        _i("gnum"), _o("totalPackageNo", 60), _s("logisticsNo", 32), _o("invtNo", 20), _o("note", 1000),
    ),
    "InvtRefundHead": (
        *_X_APP, _c("customsCode", 4), _o("loctNo", 10), _s("ebpCode", 18), _s("ebpName", 100), _s("ebcCode", 18),
        _s("ebcName", 100), _s("logisticsNo", 80), _s("logisticsCode", 18), _s("logisticsName", 100),
        _s("coElNo", 30), _o("preNo", 18), _s("invtNo", 20), _c("tradeMode", 4, required=False), _s("agentCode", 18),
        _s("agentName", 100), _s("billNo", 37), _s("ieFlag", 1), _s("trafMode", 1), _s("trafName", 100),
        _s("portCode", 4), _s("reason", 500), _s("country", 3), _s("voyageNo", 32), _o("note", 500),
    ),
    "InvtRefundList": (
        _i("gnum"), _s("gcode", 10), _s("gname", 250), _s("gmodel", 250), _d("qty"), _d("qty1"), _c("unit", 3),
        _c("unit1", 3), _d("qty2", False), _c("unit2", 3, required=False), _o("note", 500),
    ),
    "InvtRefundDetail": (
        *_X_APP, _c("customsCode", 4), _s("operatorCode", 18), _s("operatorName", 100), _s("logisticsCode", 18),
        _s("logisticsName", 100), _s("logisticsNo", 80), _o("invtNo", 20), _s("coElNo", 20), _o("preNo", 18),
        _s("billNo", 37), _c("ieFlag", 1), _c("trafMode", 1), _s("trafName", 100), _s("voyageNo", 32),
        _o("location", 250), _o("note", 250),
    ),
    "SummaryApplyHead": (
        *_X_APP, _c("customsCode", 4), _s("copNo", 30), _o("preNo", 18), _o("sumNo", 18), _s("agentCode", 18),
        _s("agentName", 100), _s("ebcCode", 18), _s("ebcName", 100), _s("declAgentCode", 18),
        _s("declAgentName", 100), _c("startTime", 14, required=False), _c("endTime", 14, required=False),
        _o("loctNo", 10), _c("summaryFlag", 1), _c("itemNameFlag", 1), _i("msgCount"), _i("msgSeqNo"),
        _o("note", 1000),
    ),
    "SummaryApplyList": (
        _s("invtNo", 20),
    ),
    "SummaryResultHead": (
        _c("guid", 36), _c("customsCode", 4), _c("sumNo", 18), _c("opDate", 17), _c("declSeqNo", 18),
        _c("decTmpNo", 18, required=False), _c("decPreNo", 18, required=False), _c("entryId", 18, required=False),
        _s("decState", 3), _s("agentCode", 18), _s("agentName", 100), _s("ebcCode", 18), _s("ebcName", 100),
        _s("declAgentCode", 18), _s("declAgentName", 100), _d("grossWeight"), _d("netWeight"), _i("msgCount"),
        _i("msgSeqNo"), _o("note", 1000),
    ),
    "SummaryResultList": (
        _s("invtNo", 20), _s("logisticsNo", 32), _i("gseqno"), _i("gnum"), _c("gcode", 10),
    ),
    "BaseTransfer": FIELDS["BaseTransfer"],
    "BaseSubscribe": FIELDS["BaseSubscribe"],
}

_TABLES = {"import": FIELDS, "export": EXPORT_FIELDS}


def table(direction: str = "import") -> dict[str, tuple[Field, ...]]:
    """The field tables of one direction ("import" or "export")."""
    return _TABLES[direction]


def names(node: str, direction: str = "import") -> tuple[str, ...]:
    """Field names of ``node`` in schema order."""
    return tuple(f.name for f in _TABLES[direction][node])


def required(node: str, direction: str = "import") -> tuple[str, ...]:
    return tuple(f.name for f in _TABLES[direction][node] if f.required)


def field(node: str, name: str, direction: str = "import") -> Field:
    for f in _TABLES[direction][node]:
        if f.name == name:
            return f
    raise KeyError(f"{node} has no field {name!r}")
