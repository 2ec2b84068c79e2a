"""Every kind of fault a sample set can carry, and how each is put into a declaration.

Two levels:

- a *file* fault makes one filing that the window refuses (xml, schema or rule layer, or 403); it is
  inserted before the clean filing it spoils (the firm then files the corrected version) or, for
  faults that only exist once the document is filed (a duplicate, a change by another firm), after it;
  the declaration still completes;
- a *declaration* fault leaves every filing acceptable to the window and makes a regulator refuse the
  declaration (三单对碰 mismatches, limits, prohibited goods) or hold it (a dishonest seller).

Expected codes come from the code that judges them (gateway/intake, mock_customs) through the shared
catalogue (schemas.catalog), never from a run of the window. ``confirmed`` says what decides each
expectation and how tests/schemas/test_samples.py confirms it without a running window: ``check`` — steps
1-3 (``gateway.intake.validate.check``) run on the file; ``registry``/``window`` — intake's database
steps, confirmed by running their pure halves (``party_findings`` against enterprises.json,
``key_findings`` against the keys the set's earlier files stored); ``regulator`` — the mock customs or
inspection, confirmed by running their own ``match`` and ``screen`` and customs' limit arithmetic.
What only a replay against a live swx can confirm is the plumbing: the database queries, routing,
the regulators' timing.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from lxml import etree

from schemas.builder import Doc, MessageBuilder, money, number
from schemas.catalog import DXP_NS, FILED
from schemas.fields import FIELDS, names
from schemas.identifiers import id_check_char, make_id_number

from .cast import Buyers, Cast, bad_uscc
from .declarations import Decl, Filing


class Drawing(Protocol):
    """What building a fault takes from the generator drawing the set (``generator.Generator``)."""

    rng: random.Random  # the set's own choices
    b: MessageBuilder
    cast: Cast
    buyers: Buyers

XML_REFUSED = {"outcome": "rejected", "httpStatus": 400, "layer": "xml", "code": "0001"}
SCHEMA_REFUSED = {"outcome": "rejected", "httpStatus": 422, "layer": "schema", "code": "0002"}
BAD_ENTERPRISE, WRONG_ROLE = "-10102", "-10101"
EXPORT_RECEIVER = "DXPEDCCEB0000003"


def rule_refused(code: str, status: int = 422) -> dict[str, Any]:
    return {"outcome": "rejected", "httpStatus": status, "layer": "rule", "code": code}


@dataclass(frozen=True)
class FaultKind:
    name: str
    level: str  # "file" | "declaration"
    types: tuple[str, ...]  # message types it can spoil (declaration faults: the file that carries it)
    outcome: str  # for people: what swx or the regulator answers
    confirmed: str  # "check" | "registry" | "window" | "regulator"
    needs: dict[str, Any] = field(default_factory=dict)  # what the declaration must be like: lines, trade_mode

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]


ALL4 = ("311", "411", "511", "621")
_K = FaultKind
KINDS: tuple[FaultKind, ...] = (
    _K("xml.malformed", "file", ALL4, "400 xml 0001 (not well-formed: cut off, or a raw '&')", "check"),
    _K("xml.doctype", "file", ALL4, "400 xml 0001 (a DOCTYPE)", "check"),
    _K("schema.missing-field", "file", ALL4, "422 schema 0002 (a required field left out)", "check"),
    _K("schema.bad-enumeration", "file", ALL4, "422 schema 0002 (currency other than the fixed 142)", "check"),
    _K("schema.too-long", "file", ALL4, "422 schema 0002 (a text over its maximum length)", "check"),
    _K("schema.bad-date", "file", ALL4, "422 schema 0002 (appTime as 'YYYY-MM-DD hh:mm:ss')", "check"),
    _K("schema.bad-number", "file", ALL4, "422 schema 0002 (an amount with a currency sign or unit)", "check"),
    _K("schema.missing-signature", "file", ("621",), "422 schema 0002 (a list without ds:Signature)", "check"),
    _K("schema.unknown-message", "file", ("311", "411", "511"), "422 schema 0002 (an export root element)", "check"),
    _K("schema.dxp-data", "file", ALL4, "422 schema 0002 (DxpMsg Data not Base64)", "check"),
    _K("rule.actural-paid-sum", "file", ("311",), "422 rule -301008 (acturalPaid without the tax)", "check"),
    _K("rule.goods-value-sum", "file", ("311",), "422 rule -301008 (goodsValue ≠ Σ totalPrice)", "check"),
    _K("rule.total-price", "file", ("311", "621"), "422 rule -301008 / -621001 (totalPrice ≠ price × qty)", "check"),
    _K("rule.id-check-digit", "file", ("311", "411", "621"), "422 rule family check code (GB 11643 check digit)", "check"),
    _K("rule.id-type", "file", ("311", "411", "621"), "422 rule family check code (ID type not 1)", "check"),
    _K("rule.uscc-check", "file", ALL4, "422 rule -10102 (USCC check character)", "check"),
    _K("rule.enterprise-code-shape", "file", ALL4, "422 rule -10102 (a 9-character enterprise code)", "check"),
    _K("rule.duplicate-gnum", "file", ("311", "621"), "422 rule -301002 / -621027 (gnum repeated)", "check", {"lines": 2}),
    _K("rule.app-type", "file", ALL4, "422 rule family check code (appType 0)", "check"),
    _K("rule.app-status", "file", ALL4, "422 rule family check code (appStatus 3)", "check"),
    _K("rule.impossible-date", "file", ALL4, "422 rule family check code (appTime on 30 February)", "check"),
    _K("rule.guid-case", "file", ALL4, "422 rule family check code (lower-case guid)", "check"),
    _K("rule.weights", "file", ("511", "621"), "422 rule -504011 / -621001 (weight 0, net > gross)", "check"),
    _K("rule.pack-no", "file", ("511", "621"), "422 rule -504011 / -621001 (packNo 2)", "check"),
    _K("rule.unit2-qty2", "file", ("621",), "422 rule -625009 (unit2 without qty2)", "check"),
    _K("rule.gcode", "file", ("621",), "422 rule -621001 (HS code written with dots)", "check"),
    _K("rule.trade-mode", "file", ("621",), "422 rule -621001 (tradeMode 0110)", "check"),
    _K("rule.transport-missing", "file", ("621",), "422 rule -621001 (9610 without billNo)", "check",
       {"trade_mode": "9610"}),
    _K("rule.signature", "file", ("621",), "422 rule -621029 (signed, then changed)", "check"),
    _K("rule.duplicate-in-message", "file", ("311", "411", "511"), "422 rule duplicate code (one key twice in a message)",
       "check"),
    _K("rule.dxp-receiver", "file", ALL4, "422 rule 2001 (DxpMsg to the export receiver)", "check"),
    _K("rule.dxp-sender", "file", ALL4, "422 rule 2002 (DxpMsg SenderId of another firm)", "check"),
    _K("rule.dxp-msg-type", "file", ALL4, "422 rule 2999 (DxpMsg MsgType of another message)", "check"),
    _K("rule.foreign-sender", "file", ALL4, "403 rule 2002 (copCode of another firm)", "check"),
    _K("rule.unregistered-enterprise", "file", ALL4, "422 rule -10102 (a code nobody registered)", "registry"),
    _K("rule.registration-expired", "file", ("311", "621"), "422 rule -10102 (a seller whose registration expired)",
       "registry"),
    _K("rule.enterprise-name", "file", ALL4, "422 rule -10102 (a name that is not the registered one)", "registry"),
    _K("rule.role-not-held", "file", ALL4, "422 rule -10101 (a firm named in a role it does not hold)", "registry"),
    _K("rule.duplicate-key", "file", ALL4, "422 rule duplicate code (appType 1 on a key already filed)", "window"),
    _K("rule.change-unknown-key", "file", ALL4, "422 rule missing code (appType 2 before appType 1)", "window"),
    _K("rule.change-not-owner", "file", ALL4, "422 rule missing code (appType 2 by a firm that did not file it)",
       "window"),
    _K("match.payment-amount", "declaration", ("411",), "rejected -621041 (amountPaid without the tax)", "regulator"),
    _K("match.consignee", "declaration", ("511",), "rejected -621042 (waybill consignee differs)", "regulator"),
    _K("match.line-gname", "declaration", ("621",), "rejected -621043 (list gname ≠ order itemName)", "regulator"),
    _K("match.line-qty", "declaration", ("621",), "rejected -621043 (list qty ≠ order qty)", "regulator"),
    _K("match.buyer", "declaration", ("621",), "rejected -621044 (list buyer ≠ order buyer)", "regulator"),
    _K("match.payer", "declaration", ("411",), "rejected -621045 (payer ≠ buyer)", "regulator"),
    _K("match.keys", "declaration", ("621",), "rejected -621046 (list names another seller)", "regulator"),
    _K("match.missing-document", "declaration", (), "rejected -621047 (waybill or payment never filed; "
       "after SWX_MOCK_MATCH_WAIT)", "regulator"),
    _K("limit.per-transaction", "declaration", ("311",), "rejected -621005 (acturalPaid over CNY 5,000)", "regulator"),
    _K("limit.annual", "declaration", ("621",), "rejected -621018 (the buyer's year over CNY 26,000; chained "
       "with after)", "regulator"),
    _K("inspection.prohibited", "declaration", ("621",), "rejected -621501 (inspection: prohibited goods)", "regulator"),
    _K("review.dishonest-seller", "declaration", ("621",), "review (customs holds a dishonest seller's list)",
       "regulator"),
)
BY_NAME: dict[str, FaultKind] = {k.name: k for k in KINDS}
DECLARATION_CODES = {
    "match.payment-amount": "-621041", "match.consignee": "-621042", "match.line-gname": "-621043",
    "match.line-qty": "-621043", "match.buyer": "-621044", "match.payer": "-621045", "match.keys": "-621046",
    "match.missing-document": "-621047", "limit.per-transaction": "-621005", "limit.annual": "-621018",
    "inspection.prohibited": "-621501",
}

KIND_OF = {"311": "order", "411": "payment", "511": "waybill", "513": "waybill_status", "621": "inventory",
           "711": "delivery"}
NODES = {"order": ("OrderHead", "OrderList"), "payment": ("PaymentHead", None), "waybill": ("LogisticsHead", None),
         "waybill_status": ("LogisticsStatus", None), "inventory": ("InventoryHead", "InventoryList"),
         "delivery": ("DeliveryHead", "DeliveryList")}


# --- editing documents ------------------------------------------------------------------------


def edit(doc: Doc, head: dict[str, Any] | None = None, lines: dict[int, dict[str, Any]] | None = None) -> Doc:
    """A copy of ``doc`` with head and line fields changed (None removes), kept in schema order."""
    head_node, line_node = NODES[doc.kind]
    h = dict(doc.head)
    for k, v in (head or {}).items():
        if v is None:
            h.pop(k, None)
        else:
            h[k] = str(v)
    order = names(head_node)
    new_head = {k: h[k] for k in order if k in h} | {k: v for k, v in h.items() if k not in order}
    new_lines = []
    for i, line in enumerate(doc.lines):
        li = dict(line)
        for k, v in (lines or {}).get(i, {}).items():
            if v is None:
                li.pop(k, None)
            else:
                li[k] = str(v)
        lorder = names(line_node)
        new_lines.append({k: li[k] for k in lorder if k in li} | {k: v for k, v in li.items() if k not in lorder})
    return Doc(doc.kind, new_head, new_lines, doc.meta)


def max_len(node: str, name: str) -> int:
    return next(f.max_len for f in FIELDS[node] if f.name == name) or 0


def _other(firms: list[Any], than: Any) -> Any:
    return next(f for f in firms if f.customs_code != than.customs_code)


def _amount(text: str) -> Decimal:
    return Decimal(text)


def _garble_amp(body: bytes) -> bytes:
    marker = "有限公司</ceb:".encode()
    if marker in body:
        return body.replace(marker, "有限公司 & Co.</ceb:".encode(), 1)
    return body[: len(body) * 2 // 3]


def _data_as_text(envelope: bytes, message: bytes) -> bytes:
    """The envelope with the message pasted into Data as text instead of Base64."""
    root = etree.fromstring(envelope)
    root.find(f"{{{DXP_NS}}}Data").text = message.decode("utf-8").split("\n", 1)[1]
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8") + b"\n"


def file_fault(g: Drawing, d: Decl, kind: str) -> None:
    """Put a refused filing of ``kind`` into ``d.filings``: before the clean filing it spoils (which
    then stands as the firm's corrected version), or after it when the fault needs it filed first."""
    fk = BY_NAME[kind]
    rng, b = g.rng, g.b
    code = rng.choice(fk.types)
    mt = FILED[code]
    doc_kind = KIND_OF[code]
    at = next(i for i, f in enumerate(d.filings) if f.code == code and f.role == "clean")
    clean = d.filings[at]
    doc = clean.docs[0]
    sender = clean.sender
    head_node, line_node = NODES[doc_kind]
    fresh = {"guid": b.guid()}
    bad: Filing | None = None
    after = False  # the faulty filing goes after the clean one (it needs the document filed)
    f = d.firms

    def faulty(new_doc: Doc, expect: dict[str, Any], **opts: Any) -> Filing:
        return Filing(code, opts.pop("sender", sender), [new_doc], kind, expect, role="fault", **opts)

    if kind == "xml.malformed":
        share = rng.randint(40, 90) if rng.random() < 0.5 else None  # cut off, or a raw '&' in a name
        bad = faulty(edit(doc, fresh), XML_REFUSED, envelope=False,
                     raw=(lambda body: body[: len(body) * share // 100]) if share else _garble_amp)
    elif kind == "xml.doctype":
        def doctype(body: bytes, root=mt.root) -> bytes:
            decl, rest = body.split(b"\n", 1)
            return decl + f'\n<!DOCTYPE ceb:{root} SYSTEM "{root}.dtd">\n'.encode() + rest
        bad = faulty(edit(doc, fresh), XML_REFUSED, envelope=False, raw=doctype)
    elif kind == "schema.missing-field":
        drop = rng.choice({"311": ("consignee", "consigneeTelephone", "buyerRegNo"), "411": ("payTime", "payerName"),
                           "511": ("consigneeTelephone", "weight"), "621": ("portCode", "declTime", "consigneeAddress")}[code])
        bad = faulty(edit(doc, {**fresh, drop: None}), SCHEMA_REFUSED)
    elif kind == "schema.bad-enumeration":
        bad = faulty(edit(doc, {**fresh, "currency": rng.choice(("502", "USD", "CNY"))}), SCHEMA_REFUSED)
    elif kind == "schema.too-long":
        if code == "311":
            h = doc.head
            extra = "（收件人不在家时请放门卫室或小区北门快递柜，不要放驿站；如需电话联系请在上午十点以后拨打，谢谢！）"
            value, name = h["consigneeAddress"], "consigneeAddress"
            while len(value) <= max_len(head_node, name):
                value += extra
            bad = faulty(edit(doc, {**fresh, name: value}), SCHEMA_REFUSED)
        elif code == "511":
            info = "；".join(f"{line['itemName']}（{line['gmodel']}）*{line['qty']}" for line in d.docs["order"].lines)
            while len(info) <= max_len(head_node, "goodsInfo"):
                info += "；" + info
            bad = faulty(edit(doc, {**fresh, "goodsInfo": info}), SCHEMA_REFUSED)
        elif code == "411":
            note = f"支付网关回执：交易号{doc.head['payTransactionId']}，渠道快捷支付，状态SUCCESS，" * 30
            bad = faulty(edit(doc, {**fresh, "note": note[: max_len(head_node, 'note') + 20]}), SCHEMA_REFUSED)
        else:
            gmodel = doc.lines[0]["gmodel"]
            while len(gmodel) <= max_len(line_node, "gmodel"):
                gmodel += "|成分：" + gmodel
            bad = faulty(edit(doc, fresh, {0: {"gmodel": gmodel}}), SCHEMA_REFUSED)
    elif kind == "schema.bad-date":
        t = doc.head["appTime"]
        bad = faulty(edit(doc, {**fresh, "appTime": f"{t[:4]}-{t[4:6]}-{t[6:8]} {t[8:10]}:{t[10:12]}:{t[12:]}"}),
                     SCHEMA_REFUSED)
    elif kind == "schema.bad-number":
        if code == "311":
            bad = faulty(edit(doc, {**fresh, "goodsValue": "¥" + doc.head["goodsValue"]}), SCHEMA_REFUSED)
        elif code == "411":
            bad = faulty(edit(doc, {**fresh, "amountPaid": doc.head["amountPaid"] + "元"}), SCHEMA_REFUSED)
        elif code == "511":
            bad = faulty(edit(doc, {**fresh, "weight": doc.head["weight"] + "kg"}), SCHEMA_REFUSED)
        else:
            bad = faulty(edit(doc, fresh, {0: {"price": "¥" + doc.lines[0]["price"]}}), SCHEMA_REFUSED)
    elif kind == "schema.missing-signature":
        bad = faulty(edit(doc, fresh), SCHEMA_REFUSED, sign=False)
    elif kind == "schema.unknown-message":
        export = {"311": "303", "411": "403", "511": "505"}[code]
        bad = faulty(edit(doc, fresh), SCHEMA_REFUSED,
                     raw=lambda body: body.replace(f"CEB{code}Message".encode(), f"CEB{export}Message".encode()))
    elif kind == "schema.dxp-data":
        bad = faulty(edit(doc, fresh), SCHEMA_REFUSED, envelope=True, env_raw=_data_as_text)
    elif kind == "rule.actural-paid-sum":
        h = doc.head
        paid = _amount(h["goodsValue"]) + _amount(h["freight"]) - _amount(h["discount"])  # the tax left out
        bad = faulty(edit(doc, {**fresh, "acturalPaid": money(paid)}), rule_refused(mt.check_code))
    elif kind == "rule.goods-value-sum":
        h = doc.head
        extra = _amount(h["freight"]) or Decimal(10)  # freight counted into the goods as well
        bad = faulty(edit(doc, {**fresh, "goodsValue": money(_amount(h["goodsValue"]) + extra),
                                "acturalPaid": money(_amount(h["acturalPaid"]) + extra)}), rule_refused(mt.check_code))
    elif kind == "rule.total-price":
        line = doc.lines[0]
        cut = min(Decimal(5), _amount(line["totalPrice"]) / 2).quantize(Decimal("0.01"))  # a line discount folded in
        total = _amount(line["totalPrice"]) - cut
        head = dict(fresh)
        if code == "311":
            head.update(goodsValue=money(_amount(doc.head["goodsValue"]) - cut),
                        acturalPaid=money(_amount(doc.head["acturalPaid"]) - cut))
        bad = faulty(edit(doc, head, {0: {"totalPrice": money(total)}}), rule_refused(mt.check_code))
    elif kind == "rule.id-check-digit":
        name = "payerIdNumber" if code == "411" else "buyerIdNumber"
        number_ = doc.head[name]
        wrong = next(c for c in "0123456789X" if c != id_check_char(number_[:17]) and c != number_[17])
        bad = faulty(edit(doc, {**fresh, name: number_[:17] + wrong}), rule_refused(mt.check_code))
    elif kind == "rule.id-type":
        name = "payerIdType" if code == "411" else "buyerIdType"
        bad = faulty(edit(doc, {**fresh, name: "2"}), rule_refused(mt.check_code))
    elif kind in ("rule.uscc-check", "rule.enterprise-code-shape", "rule.unregistered-enterprise",
                  "rule.registration-expired", "rule.enterprise-name", "rule.role-not-held"):
        name, firm = {"311": ("ebcCode", f["ebc"]), "411": ("payCode", f["pay"]), "511": ("logisticsCode", f["logistics"]),
                      "621": ("agentCode", f["agent"])}[code]
        name_field = name.replace("Code", "Name")
        if kind == "rule.uscc-check":
            change, expect = {name: bad_uscc(firm.uscc)}, rule_refused(BAD_ENTERPRISE)
        elif kind == "rule.enterprise-code-shape":
            change, expect = {name: firm.customs_code[:-1]}, rule_refused(BAD_ENTERPRISE)  # a digit dropped
        elif kind == "rule.unregistered-enterprise":
            o = g.cast.outsider
            change, expect = {name: o.named, name_field: o.name}, rule_refused(BAD_ENTERPRISE)
        elif kind == "rule.registration-expired":
            e = g.cast.expired_seller
            change, expect = {"ebcCode": e.named, "ebcName": e.name}, rule_refused(BAD_ENTERPRISE)
        elif kind == "rule.enterprise-name":
            change, expect = {name_field: firm.name[2:]}, rule_refused(BAD_ENTERPRISE)  # the city left out
        else:
            role = {"ebcCode": "ebc", "payCode": "pay", "logisticsCode": "logistics", "agentCode": "agent"}[name]
            mine = [x for x in (f["ebc"], f["agent"], f["ebp"], f["pay"], f["logistics"]) if role not in x.roles]
            who = mine[0] if mine else rng.choice(g.cast.without_role(role))
            change, expect = {name: who.named, name_field: who.name}, rule_refused(WRONG_ROLE)
        bad = faulty(edit(doc, {**fresh, **change}), expect)
    elif kind == "rule.duplicate-gnum":
        bad = faulty(edit(doc, fresh, {1: {"gnum": "1"}}), rule_refused({"311": "-301002", "621": "-621027"}[code]))
    elif kind == "rule.app-type":
        bad = faulty(edit(doc, {**fresh, "appType": "0"}), rule_refused(mt.check_code))
    elif kind == "rule.app-status":
        bad = faulty(edit(doc, {**fresh, "appStatus": "3"}), rule_refused(mt.check_code))
    elif kind == "rule.impossible-date":
        t = doc.head["appTime"]
        bad = faulty(edit(doc, {**fresh, "appTime": f"{t[:4]}0230{t[8:]}"}), rule_refused(mt.check_code))
    elif kind == "rule.guid-case":
        if rng.random() < 0.5:
            bad = faulty(edit(doc, {"guid": b.guid().lower()}), rule_refused(mt.check_code))
        else:
            bad = faulty(edit(doc, fresh), rule_refused(mt.check_code), guid=b.guid().lower())
    elif kind == "rule.weights":
        if code == "511":
            bad = faulty(edit(doc, {**fresh, "weight": "0"}), rule_refused(mt.check_code))
        else:
            net = _amount(doc.head["grossWeight"]) + Decimal("0.1")
            bad = faulty(edit(doc, {**fresh, "netWeight": number(net)}), rule_refused(mt.check_code))
    elif kind == "rule.pack-no":
        bad = faulty(edit(doc, {**fresh, "packNo": "2"}), rule_refused(mt.check_code))
    elif kind == "rule.unit2-qty2":
        line = doc.lines[0]
        change = {"qty2": None} if line.get("unit2") else {"unit2": "035"}
        bad = faulty(edit(doc, fresh, {0: change}), rule_refused("-625009"))
    elif kind == "rule.gcode":
        gcode = doc.lines[0]["gcode"]
        bad = faulty(edit(doc, fresh, {0: {"gcode": f"{gcode[:4]}.{gcode[4:6]}.{gcode[6:8]}"}}),
                     rule_refused(mt.check_code))
    elif kind == "rule.trade-mode":
        bad = faulty(edit(doc, {**fresh, "tradeMode": "0110"}), rule_refused(mt.check_code))
    elif kind == "rule.transport-missing":
        bad = faulty(edit(doc, {**fresh, "billNo": None}), rule_refused(mt.check_code))
    elif kind == "rule.signature":
        phone = doc.head["buyerTelephone"]
        changed = phone[:-1] + str((int(phone[-1]) + 1) % 10) if phone[-1].isdigit() else phone + "0"
        tag = "ceb:buyerTelephone"
        bad = faulty(edit(doc, fresh), rule_refused("-621029"),
                     raw=lambda body: body.replace(f"<{tag}>{phone}</{tag}>".encode(), f"<{tag}>{changed}</{tag}>".encode(), 1))
    elif kind == "rule.duplicate-in-message":
        twin = edit(doc, {"guid": b.guid()})
        bad = Filing(code, sender, [edit(doc, fresh), twin], kind, rule_refused(mt.duplicate_code), role="fault")
    elif kind == "rule.dxp-receiver":
        bad = faulty(edit(doc, fresh), rule_refused("2001"), envelope=True, env={"receiver_id": EXPORT_RECEIVER})
    elif kind == "rule.dxp-sender":
        other = rng.choice([x for x in g.cast.registered() if x.dxp_id != sender.dxp_id])
        bad = faulty(edit(doc, fresh), rule_refused("2002"), envelope=True, env={"sender_id": other.dxp_id})
    elif kind == "rule.dxp-msg-type":
        wrong = next(c for c in ("411", "311", "511") if c != code)
        bad = faulty(edit(doc, fresh), rule_refused("2999"), envelope=True, env={"msg_type": f"CEB{wrong}Message"})
    elif kind == "rule.foreign-sender":
        who = _other({"311": [f["ebc"], f["pay"]], "411": [f["ebp"], f["ebc"]], "511": [f["agent"], f["ebp"]],
                      "621": [f["ebc"], f["ebp"]]}[code], sender)
        bad = faulty(edit(doc, fresh), rule_refused("2002", 403), cop=who)
    elif kind == "rule.duplicate-key":
        bad, after = faulty(edit(doc, fresh), rule_refused(mt.duplicate_code)), True
    elif kind == "rule.change-unknown-key":
        bad = faulty(edit(doc, {**fresh, "appType": "2"}), rule_refused(mt.missing_code))
    elif kind == "rule.change-not-owner":
        candidates = {"311": [f["agent"], f["ebc"]], "411": [f["ebp"], f["ebc"]], "511": [f["agent"], f["ebc"]],
                      "621": [f["ebc"], f["ebp"]]}[code]
        who = _other(candidates, sender)
        bad = faulty(edit(doc, {**fresh, "appType": "2", "note": "更正：代为修改"}), rule_refused(mt.missing_code),
                     sender=who)
        after = True
    if bad is None:
        raise AssertionError(f"no construction for fault {kind}")
    d.filings.insert(at + 1 if after else at, bad)


# --- declaration faults ---------------------------------------------------------------------------


def declaration_fault(g: Drawing, d: Decl, kind: str) -> None:
    """Change ``d.docs`` so that a regulator refuses (or holds) the declaration; label the file."""
    rng = g.rng
    o, p, w, i = (d.docs[k] for k in ("order", "payment", "waybill", "inventory"))
    labelled = {"411": "payment", "511": "waybill", "621": "inventory", "311": "order"}
    if kind == "match.payment-amount":
        h = o.head
        d.docs["payment"] = edit(p, {"amountPaid": money(_amount(h["goodsValue"]) + _amount(h["freight"])
                                                         - _amount(h["discount"]))})
    elif kind == "match.consignee":
        h, how = w.head, rng.choice(("phone", "address", "name"))
        if how == "phone":
            change = {"consigneeTelephone": "+86 " + h["consigneeTelephone"]}
        elif how == "address":
            addr = re.sub(r"^.{2,3}?[省市]", "", h["consigneeAddress"], count=1) or h["consigneeAddress"] + "（代收点）"
            change = {"consigneeAddress": addr if addr != h["consigneeAddress"] else addr + "（代收点）"}
        else:
            change = {"consignee": h["consignee"][0] + "先生" if not h["consignee"].endswith("先生") else h["consignee"][0] + "女士"}
        d.docs["waybill"] = edit(w, change)
    elif kind == "match.line-gname":
        name = i.lines[0]["gname"]
        d.docs["inventory"] = edit(i, None, {0: {"gname": name[2:] if len(name) > 4 else name + "（进口）"}})
    elif kind == "match.line-qty":
        line, product = i.lines[0], o.meta["products"][0]
        qty = Decimal(line["qty"]) + 1
        change = {"qty": number(qty), "totalPrice": money(qty * Decimal(line["price"])),
                  "qty1": number(qty * Decimal(product.qty1))}
        if product.unit2:
            change["qty2"] = number(qty * Decimal(product.qty2))
        d.docs["inventory"] = edit(i, None, {0: change})
    elif kind == "match.buyer":
        if rng.random() < 0.5:
            mine = i.head["buyerIdNumber"]
            other = mine
            while other == mine:  # same region and birth date, another serial: valid, but someone else
                other = make_id_number(rng, mine[:6], mine[6:14])
            d.docs["inventory"] = edit(i, {"buyerIdNumber": other})
        else:
            other = g.buyers.new()
            d.docs["inventory"] = edit(i, {"buyerName": other.name})
    elif kind == "match.payer":
        other = g.buyers.new()  # a relative pays
        d.docs["payment"] = edit(p, {"payerIdNumber": other.id_number, "payerName": other.name})
    elif kind == "match.keys":
        seller = next(s for s in rng.sample(g.cast.sellers, len(g.cast.sellers))
                      if s.customs_code != d.firms["ebc"].customs_code)
        d.docs["inventory"] = edit(i, {"ebcCode": seller.named, "ebcName": seller.name})
    elif kind == "match.missing-document":
        d.missing = rng.choice(("waybill", "payment"))
    elif kind in ("limit.per-transaction", "limit.annual", "inspection.prohibited", "review.dishonest-seller"):
        pass  # built so by the generator (goods, buyer, seller)
    else:
        raise AssertionError(f"no construction for fault {kind}")
    code = DECLARATION_CODES.get(kind)
    d.expect = {"state": "review"} if kind == "review.dishonest-seller" else {"state": "rejected", "code": code}
    fk = BY_NAME[kind]
    d.labelled = labelled[fk.types[0]] if fk.types else None
