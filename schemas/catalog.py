"""What swx knows about each CEB message firms file: its shape, its business key and its receipt.

One table for both halves of the family (import CEB311…CEB711, export CEB303…CEB701, CEB.md §1
and §8), read by the validator, the rules, the store and the receipt writer, so that adding a
message type means adding one entry here (and its XSD family file). Import and export reuse
element names (``OrderHead``, ``Inventory``…) with other content, so each direction compiles
its own schema set (``MessageType.direction`` says which).
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.envelope import DXP_NS  # noqa: F401 - the envelope's namespace, named here beside the others

CEB_NS = "http://www.chinaport.gov.cn/ceb"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"


@dataclass(frozen=True, slots=True)
class MessageType:
    code: str  # "311"
    kind: str  # short name used in APIs and storage: "order", "payment", …
    title: str  # words for people
    wrapper: str | None  # element wrapping head + lines ("Order"); None when the head stands alone
    head: str  # "OrderHead"
    lines: str | None  # "OrderList", or None
    key: tuple[str, ...]  # head fields forming the business key
    receipt_code: str  # "312"
    receipt_node: str  # "OrderReturn"
    receipt_fields: tuple[str, ...]  # head fields echoed into the receipt, in schema order
    signed: bool  # the schema requires ds:Signature
    max_docs: int
    error_prefix: str  # business error family, e.g. "-301"
    duplicate_code: str  # appType 1 on an existing key
    missing_code: str  # appType 2/3 on a key that does not exist
    state_code: str  # appType 2/3 on a key whose state forbids the change
    check_code: str  # generic "field check failed" code of the family
    new_only: bool = False  # only appType 1 is allowed (cancellations)
    direction: str = "import"  # "import" | "export": which schema set and customs receiver it belongs to
    # Export: the schema makes ds:Signature optional everywhere; the spec's table requires it on some
    # (CEB.md §8.1), enforced as a business check: "always", "declared" (only with appStatus 2), "".
    must_sign: str = ""
    split: bool = False  # msgCount / msgSeqNo: a document may come in parts, processed once all are in
    # the key used instead when the head's ebpCode is the placeholder 无 (a foreign platform, §8.3)
    placeholder_key: tuple[str, ...] | None = None

    @property
    def root(self) -> str:
        return f"CEB{self.code}Message"

    @property
    def receipt_root(self) -> str:
        return f"CEB{self.receipt_code}Message"


FILED: dict[str, MessageType] = {
    m.code: m
    for m in (
        MessageType(
            "311", "order", "order", "Order", "OrderHead", "OrderList", ("ebpCode", "orderNo"),
            "312", "OrderReturn", ("guid", "ebpCode", "ebcCode", "orderNo"), False, 100,
            "-301", "-301010", "-301009", "-301011", "-301008",
        ),
        MessageType(
            "411", "payment", "payment", "Payment", "PaymentHead", None, ("payCode", "payTransactionId"),
            "412", "PaymentReturn", ("guid", "payCode", "payTransactionId"), False, 100,
            "-401", "-401007", "-401006", "-401008", "-401009",
        ),
        MessageType(
            "511", "waybill", "waybill", "Logistics", "LogisticsHead", None, ("logisticsCode", "logisticsNo"),
            "512", "LogisticsReturn", ("guid", "logisticsCode", "logisticsNo"), False, 100,
            "-504", "-504015", "-504014", "-504016", "-504011",
        ),
        MessageType(
            "513", "waybill_status", "waybill status", None, "LogisticsStatus", None,
            ("logisticsCode", "logisticsNo", "logisticsStatus"),
            "514", "LogisticsStatusReturn", ("guid", "logisticsCode", "logisticsNo", "logisticsStatus"), False, 100,
            "-505", "-505012", "-505014", "-505014", "-505011",
        ),
        MessageType(
            "621", "inventory", "declaration list", "Inventory", "InventoryHead", "InventoryList", ("ebcCode", "orderNo"),
            "622", "InventoryReturn", ("guid", "customsCode", "ebpCode", "ebcCode", "agentCode", "copNo", "preNo", "invtNo"),
            True, 100, "-621", "-621004", "-621011", "-621012", "-621001",
        ),
        MessageType(
            "623", "cancel", "list cancellation", None, "InvtCancel", None, ("ebcCode", "invtNo"),
            "624", "InvtCancelReturn", ("guid", "customsCode", "agentCode", "ebpCode", "ebcCode", "copNo", "preNo", "invtNo"),
            True, 100, "-623", "-623009", "-623003", "-623005", "-623014", new_only=True,
        ),
        MessageType(
            "625", "refund", "return request", "InvtRefund", "InvtRefundHead", "InvtRefundList", ("ebcCode", "invtNo"),
            "626", "InvtRefundReturn", ("guid", "customsCode", "agentCode", "ebpCode", "ebcCode", "copNo", "preNo", "invtNo"),
            True, 100, "-625", "-625033", "-625018", "-625022", "-625001",
        ),
        MessageType(
            "711", "delivery", "arrival (delivery) note", "Delivery", "DeliveryHead", "DeliveryList", ("operatorCode", "billNo"),
            "712", "DeliveryReturn", ("guid", "customsCode", "operatorCode", "copNo", "preNo", "rkdNo"), True, 1,
            "-800", "-800003", "-800001", "-800001", "-800001",
        ),
    )
}


def _export(code: str, kind: str, title: str, wrapper: str | None, head: str, lines: str | None,
            key: tuple[str, ...], receipt_node: str, receipt_fields: tuple[str, ...], codes: tuple[str, str, str, str] | None,
            must_sign: str = "", **extra) -> MessageType:
    """An export entry (CEB.md §8.1–8.2, 8.5). ``codes``: (duplicate, missing, state, check) of its
    family; None for the messages without one, whose codes are -(code × 1000 + n)."""
    if codes is None:
        base = -int(code) * 1000
        codes = (str(base - 2), str(base - 3), str(base - 4), str(base - 1))
    receipt_code = str(int(code) + 1)
    return MessageType(code, kind, title, wrapper, head, lines, key, receipt_code, receipt_node, receipt_fields, False, 100,
                       codes[3][:4], *codes, direction="export", must_sign=must_sign, **extra)


EXPORT: dict[str, MessageType] = {
    m.code: m
    for m in (
        _export("303", "export_order", "export order", "Order", "OrderHead", "OrderList", ("ebpCode", "orderNo"),
                "OrderReturn", ("guid", "ebpCode", "ebcCode", "orderNo"), ("-301010", "-301009", "-301011", "-301008"),
                placeholder_key=("ebcCode", "orderNo")),
        _export("403", "collection", "collection (money received)", None, "Receipts", None, ("ebpCode", "orderNo"),
                "ReceiptsReturn", ("guid", "ebcCode", "orderNo", "payNo"), ("-401007", "-401006", "-401008", "-401009"),
                placeholder_key=("ebcCode", "orderNo")),
        _export("505", "export_waybill", "export waybill", None, "Logistics", None, ("logisticsCode", "logisticsNo"),
                "LogisticsReturn", ("guid", "logisticsCode", "logisticsNo"), ("-504015", "-504014", "-504016", "-504011")),
        _export("507", "arrival", "arrival at the export site", "Arrival", "ArrivalHead", "ArrivalList",
                ("operatorCode", "copNo", "msgSeqNo"), "ArrivalReturn",
                ("guid", "operatorCode", "logisticsCode", "preNo", "copNo", "billNo", "msgSeqNo"), None, "declared", split=True),
        _export("509", "departure", "departure", "Departure", "DepartureHead", "DepartureList",
                ("logisticsCode", "copNo", "msgSeqNo"), "DepartureReturn",
                ("guid", "logisticsCode", "copNo", "preNo", "msgSeqNo"), None, "always", split=True),
        _export("603", "export_inventory", "export declaration list", "Inventory", "InventoryHead", "InventoryList",
                ("agentCode", "copNo"), "InventoryReturn",
                ("guid", "agentCode", "copNo", "preNo", "invtNo", "ebcCode", "ebpCode", "orderNo", "statisticsFlag"),
                ("-621004", "-621011", "-621012", "-621001"), "always"),
        _export("605", "export_cancel", "export list cancellation", None, "InvtCancel", None, ("agentCode", "copNo"),
                "InvtCancelReturn", ("guid", "agentCode", "copNo", "preNo", "invtNo"),
                ("-623009", "-623003", "-623005", "-623014"), "always", new_only=True),
        _export("607", "consolidation", "consolidation (master bill)", "WayBill", "WayBillHead", "WayBillList",
                ("agentCode", "copNo", "msgSeqNo"), "WayBillReturn",
                ("guid", "agentCode", "logisticsCode", "copNo", "preNo", "billNo", "msgSeqNo"), None, "always", split=True),
        _export("213", "export_refund", "export return", "InvtRefund", "InvtRefundHead", "InvtRefundList",
                ("agentCode", "coElNo"), "RefundReturn",
                ("guid", "ebpCode", "ebcCode", "agentCode", "coElNo", "preNo", "invtNo"),
                ("-625033", "-625018", "-625022", "-625001")),
        _export("215", "refund_tally", "return tally", None, "InvtRefundDetail", None, ("operatorCode", "coElNo"),
                "InvtRefundDetailReturn", ("guid", "operatorCode", "logisticsCode", "logisticsNo", "coElNo", "preNo"), None),
        _export("701", "summary", "summary request", "SummaryApply", "SummaryApplyHead", "SummaryApplyList",
                ("agentCode", "copNo", "msgSeqNo"), "SummaryReturn",
                ("guid", "agentCode", "ebcCode", "copNo", "preNo", "sumNo", "msgSeqNo"), None, "always", split=True),
    )
}
IMPORT: dict[str, MessageType] = dict(FILED)
FILED.update(EXPORT)
# CEB214's receipt root is CEB214Message like every other (the official sample's bare CEB214 is a slip, §8.6).

BY_ROOT: dict[str, MessageType] = {m.root: m for m in FILED.values()}
BY_KIND: dict[str, MessageType] = {m.kind: m for m in FILED.values()}

# Receipts swx sends back, and the format-failure receipt (export has none of its own: CEB900, §8.5).
RECEIPT_CODES = tuple(m.receipt_code for m in FILED.values())
MESSAGE_RETURN_CODE = "900"
# What customs itself issues on export: the summary result (the declaration built from a 701).
SUMMARY_RESULT_CODE = "792"
# Customs' receiver ids on the exchange platform, by direction (CEB.md §6).
CUSTOMS_RECEIVERS = {"import": "DXPEDCCEB0000002", "export": "DXPEDCCEB0000003"}
# Placeholders an export document may put in a party field instead of a code (§8.3): no checks.
PLACEHOLDERS = {"ebpCode": "无", "ownerCode": "NO"}

# Fields that name an enterprise, and the role the field implies (CEB.md §7).
ENTERPRISE_FIELDS: dict[str, str] = {
    "ebpCode": "ebp",
    "ebcCode": "ebc",
    "payCode": "pay",
    "logisticsCode": "logistics",
    "agentCode": "agent",
    "assureCode": "assure",
    "areaCode": "area",
    "operatorCode": "operator",
    "declAgentCode": "agent",  # export 701: who lodges the customs declaration the summary becomes
}

# Receipt status codes (CEB.md §5) used at intake.
STATUS_SAVED = "1"
STATUS_DECLARED = "2"
STATUS_DELETED = "-1"  # ours: a document withdrawn by appType 3; never sent on the wire
# States in which a document may still be changed (appType 2) or deleted (appType 3) by its filer.
# Ours: once customs has taken a document in (120) or decided on it, it can only be cancelled (623).
CHANGEABLE_STATES = frozenset({"1", "2", "3", "4", "100"})
# Order, payment and waybill are what customs matches a list against: it takes a new version of one
# after accepting it (120) too, until it has concluded (399) on them.
REFERENCE_KINDS = frozenset({"order", "payment", "waybill", "export_order", "collection", "export_waybill"})


def changeable(kind: str, status: str) -> bool:
    """Whether a document of ``kind`` in state ``status`` may still be changed or deleted by its filer."""
    return status in CHANGEABLE_STATES or (kind in REFERENCE_KINDS and status == "120")

APP_TYPES = {"1": "new", "2": "change", "3": "delete"}
