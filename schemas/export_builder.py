"""Builds realistic, valid CEB export messages (303…701, and customs' 792), for tests, demos and load runs.

The export half of the family (CEB.md §8) has other documents, other keys and other parties than
import, so it has a builder of its own; the machinery is the import builder's (``Doc``, ``Party``,
the seeded clock, ``render``, ``wrap_dxp``, the test signing identity), imported, not copied.

Everything is invented and deterministic: one seed, one sequence of calls, byte-identical output.
A seller (ebc) belongs to one of the industries the export plan names — machinery, textiles and
garments, wigs, handicrafts, farm produce — and sells from that industry's catalogue (real 10-digit
HS codes). Documents built from other documents agree with them as §8.2 and §8.3 require: the
list's lines are the order's lines (gnum, qty, unit, price, totalPrice, currency, itemName), the
receipt's ``charge`` stays within ``goodsValue`` + ``freight``, ``netWeight`` ≤ ``grossWeight``,
``tradeMode`` matches ``orderType``, codes pass their check characters, copNo/coElNo are unique.

Overrides work as in the import builder: ``field=value`` replaces a head field after everything is
computed, ``field=None`` removes it, ``lines_overrides`` is a list of dicts applied to the lines by
position (on an order a changed ``qty`` or ``price`` recomputes ``totalPrice`` and ``goodsValue``).

The flow: ``declaration(parties, order_type="E")`` gives the linked order, receipt (when one is needed,
or asked for), waybill and list; ``consolidation``, ``arrival`` and ``departure`` take a set of
declarations (or waybills) and may split into parts (``per_part``); ``refund``/``tally`` follow a
list; ``summary`` folds B lists; ``summary_result`` is customs' answer to one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from lxml import etree

from schemas.builder import (
    FIRM_CITIES,
    FIRM_WORDS,
    ROLE_SUFFIXES,
    BuilderCore,
    Doc,
    Party,
    _ean13,
    _line_overrides,
    money,
    number,
    render,
)
from schemas.builder import _finish as _finish_any
from schemas.catalog import CEB_NS, CUSTOMS_RECEIVERS, EXPORT, PLACEHOLDERS, MessageType
from schemas.identifiers import make_customs_code, make_uscc

CNY = "142"
USD = "502"
EXPORT_RECEIVER = CUSTOMS_RECEIVERS["export"]
NO_PLATFORM = PLACEHOLDERS["ebpCode"]  # 无: a foreign platform without a customs code
NO_OWNER = PLACEHOLDERS["ownerCode"]  # NO: a producer not registered with customs
NO_BARCODE = "无"
CASH = "现金支付"

# orderType → the list trade modes it may go with (CEB.md §8.3)
TRADE_MODES = {"E": ("9610", "1210"), "B": ("9710",), "W": ("9810",)}
RETURN_MODES = {"9610": "9661", "9710": "9661", "9810": "9661", "1210": "1261"}
# Orders that conclude only with a receipt 403 (ours, §8.2): B2C.
NEEDS_COLLECTION = frozenset({"E"})

# 792 is customs' own message, not a filing: no BaseTransfer, no receipt, so not in the catalog.
SUMMARY_RESULT = MessageType(
    "792", "summary_result", "summary result", "SummaryResult", "SummaryResultHead", "SummaryResultList",
    ("sumNo", "declSeqNo"), "", "", (), False, 100, "", "", "", "", "", direction="export",
)
MESSAGES: dict[str, MessageType] = {**EXPORT, "792": SUMMARY_RESULT}


def _finish(node: str, values: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    return _finish_any(node, values, overrides, direction="export")


# --- invented reference data ------------------------------------------------------------------


class ExportProduct(NamedTuple):
    gcode: str  # 10-digit HS code
    name: str
    gmodel: str  # brand|spec|material|use, ≤ 250 characters
    unit: str  # trade unit (JGS-20): 001 set(台), 006 set(套), 007 piece, 011 item, 016 把, 025 pair, 136 bag, 140 box, 142 bottle
    unit1: str  # first legal unit
    qty1: str  # legal quantity per trade unit
    unit2: str | None
    qty2: str | None
    price: tuple[int, int]  # plausible FOB unit price range, CNY
    net_kg: str  # net weight per trade unit


# Each industry: words for the seller's name, and its goods.
INDUSTRIES: dict[str, tuple[tuple[str, ...], tuple[ExportProduct, ...]]] = {
    "machinery": (("机电", "五金工具", "电器"), (
        ExportProduct("8467210000", "锂电手持式电钻", "锐铂牌|20V锂电池|13mm夹头|双速|木材金属钻孔",
                      "001", "001", "1", "035", "1.6", (180, 520), "1.600"),
        ExportProduct("8204110000", "铬钒钢双头呆扳手套装", "锐铂牌|铬钒钢|8件套|6-22mm|手动扳手",
                      "006", "035", "0.9", None, None, (35, 120), "0.900"),
        ExportProduct("8205400000", "精密螺丝刀套装", "匠途牌|S2合金钢|24件套|磁性批头|手动螺丝刀",
                      "006", "035", "0.35", None, None, (25, 89), "0.350"),
        ExportProduct("8203200000", "多功能钢丝钳", "匠途牌|高碳钢|8英寸|绝缘手柄|手动钳子",
                      "016", "035", "0.3", None, None, (18, 60), "0.300"),
        ExportProduct("8424200000", "电动喷漆枪", "锐铂牌|600W|800ml漆壶|HVLP|家装喷涂",
                      "001", "001", "1", "035", "1.2", (150, 380), "1.200"),
        ExportProduct("8516310000", "负离子电吹风", "风驰牌|1800W|三档温控|负离子|家用吹风机",
                      "001", "001", "1", "035", "0.55", (89, 299), "0.550"),
    )),
    "textiles": (("服饰", "针纺织品", "制衣"), (
        ExportProduct("6109100010", "纯棉圆领短袖T恤", "云裳牌|100%棉|针织|男式|圆领短袖",
                      "011", "011", "1", "035", "0.2", (19, 69), "0.200"),
        ExportProduct("6204420000", "纯棉印花连衣裙", "云裳牌|100%棉|机织|女式|印花中长款",
                      "011", "011", "1", "035", "0.35", (59, 199), "0.350"),
        ExportProduct("6104430000", "合成纤维针织连衣裙", "绮丽牌|95%聚酯纤维5%氨纶|针织|女式|修身款",
                      "011", "011", "1", "035", "0.3", (49, 159), "0.300"),
        ExportProduct("6115950000", "精梳棉运动袜", "步悦牌|80%棉20%锦纶|针织|中筒|5双装",
                      "025", "025", "1", "035", "0.05", (6, 25), "0.050"),
    )),
    "wigs": (("发制品", "假发", "美发用品"), (
        ExportProduct("6704110000", "合成纤维长卷整头假发", "瑞发牌|高温丝|65cm|大波浪|整头假发",
                      "007", "035", "0.25", None, None, (120, 480), "0.250"),
        ExportProduct("6704190000", "合成纤维无痕接发片", "瑞发牌|高温丝|50cm|5片装|卡扣式接发",
                      "007", "035", "0.12", None, None, (45, 180), "0.120"),
        ExportProduct("6704200000", "真人发蕾丝头套假发", "瑞发牌|100%人发|蕾丝前额|55cm|直发",
                      "007", "035", "0.3", None, None, (680, 2600), "0.300"),
        ExportProduct("6704190000", "化纤仿真假睫毛", "媚睫牌|化纤|10对装|自然款|手工假睫毛",
                      "140", "035", "0.02", None, None, (8, 30), "0.020"),
    )),
    "handicrafts": (("工艺品", "艺术品", "家居饰品"), (
        ExportProduct("4602193000", "手工柳编收纳篮", "巧匠牌|柳条|35×25×20cm|带提手|家居收纳",
                      "007", "035", "0.6", None, None, (28, 98), "0.600"),
        ExportProduct("4602111000", "手工竹编果盘", "巧匠牌|毛竹|直径30cm|圆形|餐桌果盘",
                      "007", "035", "0.3", None, None, (18, 68), "0.300"),
        ExportProduct("6913100000", "青花瓷手绘花瓶摆件", "瓷韵牌|瓷|高30cm|手绘青花|室内装饰",
                      "007", "035", "1.2", None, None, (98, 680), "1.200"),
        ExportProduct("9505900000", "春节装饰挂件套装", "福满牌|纸、塑料|12件套|灯笼、中国结|节日装饰",
                      "006", "035", "0.4", None, None, (15, 59), "0.400"),
    )),
    "farm": (("农产品", "茶业", "农业发展"), (
        ExportProduct("0902101000", "西湖龙井绿茶", "茗香牌|250g/盒|一级|明前采摘|绿茶",
                      "140", "035", "0.25", None, None, (180, 880), "0.250"),
        ExportProduct("0902301000", "安溪铁观音乌龙茶", "茗香牌|250g/盒|浓香型|乌龙茶",
                      "140", "035", "0.25", None, None, (120, 560), "0.250"),
        ExportProduct("0902309000", "武夷正山小种红茶", "茗香牌|200g/盒|特级|红茶",
                      "140", "035", "0.2", None, None, (98, 420), "0.200"),
        ExportProduct("0712320000", "东北秋木耳", "林珍牌|500g/袋|干制|黑木耳",
                      "136", "035", "0.5", None, None, (35, 120), "0.500"),
        ExportProduct("0802310000", "新疆带壳薄皮核桃", "林珍牌|1kg/袋|带壳|185品种",
                      "136", "035", "1", None, None, (30, 90), "1.000"),
        ExportProduct("0409000000", "天然百花蜂蜜", "蜂源牌|500g/瓶|天然成熟蜜|百花蜜",
                      "142", "035", "0.5", None, None, (38, 128), "0.500"),
    )),
}

# Destinations (JGS-20 country codes): USA, UK, Germany, France, Japan, Korea, Australia, Russia,
# Singapore, Malaysia, Canada, Brazil, Philippines, Thailand, Vietnam.
DESTINATIONS = ("502", "303", "304", "305", "116", "133", "601", "344", "132", "122", "501", "410", "129", "136", "141")
# Export supervised sites: (customs office, exit port, site name, plate prefix of the local trucks).
EXPORT_SITES = (
    ("2991", "2991", "杭州跨境电商出口监管中心", "浙A"), ("2920", "2920", "义乌跨境电商出口监管中心", "浙G"),
    ("3105", "3105", "宁波栎社跨境出口监管中心", "浙B"), ("2244", "2244", "浦东机场跨境出口监管仓", "沪B"),
    ("5349", "5304", "深圳前海跨境电商出口监管仓", "粤B"), ("5141", "5141", "广州白云机场跨境出口监管中心", "粤A"),
    ("4606", "4604", "郑州航空港跨境出口监管中心", "豫A"), ("8013", "8012", "重庆西永跨境出口监管仓", "渝A"),
)
AIRLINES = (("999", "CA"), ("784", "CZ"), ("781", "MU"), ("880", "HU"), ("112", "CK"), ("160", "CX"))
VESSELS = ("COSCO SHIPPING ARIES", "CSCL JUPITER", "ZHONG GU HANG ZHOU", "OOCL NINGBO", "MSC AURORA")
SEA_LINES = ("COSU", "CSLU", "OOLU", "MEDU")
RAIL_TRAINS = ("X8024", "X8044", "X9012", "X8155")
FOREIGN_PLATFORMS = ("GLOBUY MARKETPLACE LTD", "SHOPNOVA INC.", "BAZAARO GMBH", "MARKETLANE PTY LTD")
FOREIGN_PAYERS = ("NORDPAY LIMITED", "PAYWAVE GLOBAL INC.", "ATLAS MERCHANT SERVICES")
WORKSHOPS = ("许昌发制品加工作坊", "曹县木制品手工作坊", "安溪茶农合作社", "临沂柳编工艺加工点", "南通家纺加工户")
CANCEL_REASONS = ("买家取消订单", "商品信息申报有误，撤销清单重新申报", "重复申报，申请撤销", "包裹未能出运，撤销清单")
REFUND_REASONS = ("境外买家拒收，退运回国", "商品尺码不符，境外消费者退货", "目的国清关失败，退货", "运输途中破损，退回")
EXPORT_ROLES = {
    "ebp": ("网络科技有限公司", "跨境电子商务有限公司"),
    "pay": ROLE_SUFFIXES["pay"],
    "logistics": ROLE_SUFFIXES["logistics"],
    "agent": ROLE_SUFFIXES["agent"],
    "operator": ("跨境电商监管中心有限公司", "国际快件监管中心有限公司", "空港物流有限公司"),
    "iac": ("保税仓储有限公司", "综保区物流有限公司"),
}


# --- parties ----------------------------------------------------------------------------------


@dataclass
class ExportParties:
    """The firms of one export business: an export seller in one industry and whoever serves it."""

    industry: str
    ebp: Party  # platform; code 无 for a foreign platform without a customs code
    ebc: Party  # the seller, the list's consignor 收发货人
    pay: Party  # domestic payment firm collecting the money
    logistics: Party
    agent: Party  # declares lists, cancels, 607, 213, 701
    operator: Party  # export supervised site
    owner: Party  # producer 生产销售单位; code NO when not registered with customs
    iac: Party  # warehouse firm inside the special zone (1210)
    decl_agent: Party  # lodges the customs declaration a summary becomes (often the agent itself)

    @classmethod
    def generate(cls, rng: random.Random | int | None = None, *, industry: str | None = None,
                 foreign_platform: bool | None = None) -> ExportParties:
        rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        industry = industry or rng.choice(sorted(INDUSTRIES))
        if industry not in INDUSTRIES:
            raise ValueError(f"unknown industry {industry!r}; one of {sorted(INDUSTRIES)}")
        words = rng.sample(FIRM_WORDS, len(EXPORT_ROLES) + 2)
        made = {role: _firm(rng, word, rng.choice(suffixes)) for (role, suffixes), word in zip(EXPORT_ROLES.items(), words)}
        trade_words = INDUSTRIES[industry][0]
        ebc = _firm(rng, words[-1], f"{rng.choice(trade_words)}{rng.choice(('进出口有限公司', '国际贸易有限公司', '跨境电子商务有限公司'))}")
        if foreign_platform is None:
            foreign_platform = rng.random() < 0.2
        if foreign_platform:
            made["ebp"] = Party(NO_PLATFORM, rng.choice(FOREIGN_PLATFORMS), f"DXPENT{rng.randrange(10**10):010d}")
        roll = rng.random()
        if roll < 0.4:
            owner = ebc  # the seller makes what it sells
        elif roll < 0.8:
            owner = _firm(rng, words[-2], f"{rng.choice(trade_words)}{rng.choice(('制品有限公司', '实业有限公司', '制造有限公司'))}")
        else:
            owner = Party(NO_OWNER, rng.choice(WORKSHOPS), "")
        decl_agent = made["agent"] if rng.random() < 0.7 else _firm(rng, rng.choice(FIRM_WORDS), "报关行有限公司")
        return cls(industry=industry, ebc=ebc, owner=owner, decl_agent=decl_agent, **made)

    @property
    def goods(self) -> tuple[ExportProduct, ...]:
        return INDUSTRIES[self.industry][1]

    @property
    def foreign_platform(self) -> bool:
        return self.ebp.code == NO_PLATFORM

    def registrations(self) -> list[dict[str, Any]]:
        """What the registry must hold for messages naming these parties: one record per enterprise,
        with every role it plays here (``POST /v1/enterprises`` bodies). Placeholders (无, NO) are
        not enterprises and are left out; the producer and the zone warehouse firm have no CEB role
        of their own (CEB.md §7) and are left out too."""
        held: dict[str, tuple[Party, set[str]]] = {}
        for role, attr in (("ebp", "ebp"), ("ebc", "ebc"), ("pay", "pay"), ("logistics", "logistics"),
                           ("agent", "agent"), ("operator", "operator"), ("agent", "decl_agent")):
            party = getattr(self, attr)
            if party.code not in PLACEHOLDERS.values():
                held.setdefault(party.code, (party, set()))[1].add(role)
        return [{"code": p.code, "name": p.name, "roles": sorted(roles), "dxpId": p.dxp_id} for p, roles in held.values()]

    def sender_for(self, code: str) -> Party:
        """The party that usually transmits message ``code`` (CEB.md §8.1)."""
        if code == "303":
            return self.ebc if self.foreign_platform else self.ebp
        return {"403": self.pay, "505": self.logistics, "507": self.operator, "509": self.logistics,
                "603": self.agent, "605": self.agent, "607": self.agent, "213": self.agent,
                "215": self.operator, "701": self.agent}[code]


def _firm(rng: random.Random, word: str, suffix: str) -> Party:
    city, region = rng.choice(FIRM_CITIES)
    code = make_uscc(rng, region) if rng.random() < 0.5 else make_customs_code(rng, region[:4])
    return Party(code, f"{city}{word}{suffix}", f"DXPENT{rng.randrange(10**10):010d}")


# --- small helpers ----------------------------------------------------------------------------


def _time(when: dt.datetime) -> str:
    return when.strftime("%Y%m%d%H%M%S")


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp[:14], "%Y%m%d%H%M%S")


def _kg(value: Decimal) -> str:
    return number(value.quantize(Decimal("0.001"), ROUND_HALF_UP))


def _parts(items: Sequence[Any], per_part: int | None) -> list[list[Any]]:
    """``items`` in chunks of ``per_part`` (all in one when None); at least one, possibly empty, part."""
    if not per_part or per_part >= len(items):
        return [list(items)]
    return [list(items[i:i + per_part]) for i in range(0, len(items), per_part)]


Parcel = tuple[Doc, Doc | None]  # (waybill, its list or None)


def _parcels(items: Sequence[Doc | Mapping[str, Doc]]) -> list[Parcel]:
    """Waybills (and their lists when known) from declarations (dicts) or waybill Docs."""
    out: list[Parcel] = []
    for item in items:
        if isinstance(item, Doc):
            out.append((item, None))
        else:
            out.append((item["waybill"], item.get("inventory")))
    return out


# --- the builder ------------------------------------------------------------------------------


class ExportBuilder(BuilderCore):
    receiver = EXPORT_RECEIVER

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        # Serials that make filer numbers (copNo, coElNo) unique within this builder.
        self._serial = itertools.count(self.rng.randrange(100000, 400000))

    # -- small generators --
    def parties(self, *, industry: str | None = None, foreign_platform: bool | None = None) -> ExportParties:
        return ExportParties.generate(self.rng, industry=industry, foreign_platform=foreign_platform)

    def _cop_no(self, prefix: str, when: dt.datetime) -> str:
        return f"{prefix}{when:%Y%m%d}{next(self._serial):06d}{self._digits(2)}"

    def _site(self) -> tuple[str, str, str, str]:
        return self.rng.choice(EXPORT_SITES)

    def _transport(self, when: dt.datetime) -> dict[str, str]:
        """The international leg: air mostly, then sea, rail (China-Europe trains), road, post."""
        rng, roll = self.rng, self.rng.random()
        date = when + dt.timedelta(days=rng.randint(1, 3))
        if roll < 0.6:
            prefix, carrier = rng.choice(AIRLINES)
            serial = rng.randrange(10**7)
            flight = f"{carrier}{rng.randint(101, 9899)}"
            return {"trafMode": "5", "trafName": flight, "voyageNo": f"{flight}/{date:%Y%m%d}",
                    "billNo": f"{prefix}-{serial:07d}{serial % 7}"}  # air waybill: 7 digits + mod-7 check
        if roll < 0.8:
            line = rng.choice(SEA_LINES)
            return {"trafMode": "2", "trafName": rng.choice(VESSELS),
                    "voyageNo": f"{rng.randint(1, 99):03d}{rng.choice('EW')}", "billNo": f"{line}{self._digits(10)}"}
        if roll < 0.9:
            train = rng.choice(RAIL_TRAINS)
            return {"trafMode": "3", "trafName": f"中欧班列{train}", "voyageNo": f"{train}{date:%y%m%d}",
                    "billNo": f"CRE{date:%y%m}{self._digits(8)}"}
        if roll < 0.95:
            return {"trafMode": "4", "trafName": f"粤Z{self._digits(4)}港", "voyageNo": f"{date:%Y%m%d}",
                    "billNo": f"HK{date:%y%m%d}{self._digits(6)}"}
        return {"trafMode": "6", "trafName": "国际邮路", "voyageNo": f"{date:%Y%m%d}",
                "billNo": f"CN{self._digits(9)}"}

    def shipment(self) -> dict[str, Any]:
        """One outbound consignment (flight/vessel/train, master bill, site) that several declarations
        can share, so that one 607, 507 and 509 cover their parcels."""
        return {**self._transport(self.clock), "site": self._site()}

    def _plate(self, site: Sequence[str]) -> str:
        return f"{site[3]}{''.join(self.rng.choice('0123456789ABCDEFGHJKLMNPQRSTUVWXYZ') for _ in range(5))}"

    # -- 三单 --
    def order(self, parties: ExportParties, *, order_type: str = "E", order_no: str | None = None, lines: int = 1,
              trade_mode: str | None = None, currency: str | None = None, shipment: Mapping[str, Any] | None = None,
              lines_overrides: Sequence[Mapping[str, Any]] | None = None, **overrides: Any) -> Doc:
        """An export order 303 (``orderType`` E B2C, B B2B, W overseas-warehouse booking)."""
        if order_type not in TRADE_MODES:
            raise ValueError(f"orderType is one of {sorted(TRADE_MODES)}, not {order_type!r}")
        if not 1 <= lines <= 100:
            raise ValueError("an export order has 1 to 100 lines")
        rng = self.rng
        when = self._tick()
        trade_mode = trade_mode or rng.choice(TRADE_MODES[order_type])
        currency = currency or (CNY if order_type == "E" or rng.random() < 0.5 else USD)
        rate = Decimal(1) if currency == CNY else Decimal("7.1")
        goods = parties.goods
        products = rng.sample(goods, lines) if lines <= len(goods) else rng.choices(goods, k=lines)
        destination = rng.choice(DESTINATIONS)
        order_lines, net = [], Decimal(0)
        for i, p in enumerate(products):
            cny = Decimal(rng.randint(*p.price))
            price = (cny / rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
            if order_type == "E":
                qty = rng.choice((1, 1, 1, 2, 2, 3, 5))
            elif order_type == "B":
                qty = rng.choice((20, 50, 100, 200, 300, 500))
            else:
                qty = rng.choice((100, 200, 500, 1000, 2000))
            line = {
                "gnum": i + 1, "itemNo": f"SKU{self._digits(8)}", "itemName": p.name,
                "itemDescribe": f"{p.name}，{p.gmodel.split('|')[0]}，中国制造" if rng.random() < 0.3 else None,
                "barCode": _ean13(rng, "69") if rng.random() < 0.6 else None,
                "unit": p.unit, "currency": currency, "qty": qty, "price": money(price), "totalPrice": None,
                "note": None,
            }
            line.update(_line_overrides(lines_overrides, i))
            if line["totalPrice"] is None:
                line["totalPrice"] = money(Decimal(str(line["qty"])) * Decimal(str(line["price"])))
            net += Decimal(str(line["qty"])) * Decimal(p.net_kg)
            order_lines.append(_finish("OrderList", line))
        value = sum((Decimal(line["totalPrice"]) for line in order_lines), Decimal(0))
        default_freight = rng.choice((0, 0, 15, 25, 38, 60)) if order_type == "E" else rng.choice((0, 300, 800, 1500))
        freight = Decimal(str(overrides.get("freight", default_freight) or 0))
        if overrides.get("freight", 0) is not None:
            overrides["freight"] = money(freight)
        gross = (net * Decimal(str(rng.uniform(1.05, 1.25))) + Decimal("0.05")).quantize(Decimal("0.001"))
        insured = Decimal(0) if rng.random() < 0.7 else (value * Decimal(rng.choice(("0.003", "0.005")))).quantize(Decimal("0.01"))
        head = {
            "guid": self.guid(), "appType": "1", "appTime": _time(when), "appStatus": "2",
            "orderType": order_type, "orderNo": order_no or f"EO{when:%Y%m%d%H%M}{self._digits(6)}",
            "ebpCode": parties.ebp.code, "ebpName": parties.ebp.name,
            "ebcCode": parties.ebc.code, "ebcName": parties.ebc.name,
            "goodsValue": money(value), "freight": money(freight), "currency": currency,
            "note": rng.choice(("海外仓备货", "旺季补货", "客户加急")) if order_type != "E" and rng.random() < 0.2 else None,
        }
        meta = {
            "orderType": order_type, "tradeMode": trade_mode, "products": products, "destination": destination,
            "netWeight": net.quantize(Decimal("0.001")), "grossWeight": max(gross, net.quantize(Decimal("0.001"))),
            "insuredFee": insured, "shipment": dict(shipment) if shipment else None,
            "site": (shipment or {}).get("site") or self._site(),
        }
        return Doc("export_order", _finish("OrderHead", head, overrides), order_lines, meta)

    def collection(self, order: Doc, parties: ExportParties, *, payer: str = "domestic", **overrides: Any) -> Doc:
        """A receipt 403: money received for ``order`` (``payer``: domestic firm, foreign firm, cash)."""
        rng, o = self.rng, order.head
        ceiling = Decimal(o["goodsValue"]) + Decimal(o.get("freight") or 0)
        # mostly the whole amount; sometimes less (a non-cash discount is inside goodsValue)
        charge = ceiling if rng.random() < 0.8 else (ceiling * Decimal(rng.choice(("0.9", "0.95", "0.98")))).quantize(Decimal("0.01"))
        received = max(_parse(o["appTime"]), self.clock) + dt.timedelta(seconds=rng.randint(600, 5 * 86400))
        self.clock = max(self.clock, received)
        if payer == "domestic":
            pay_code, pay_name = parties.pay.code, parties.pay.name
        elif payer == "foreign":
            pay_code, pay_name = None, rng.choice(FOREIGN_PAYERS)
        elif payer == "cash":
            pay_code, pay_name = None, CASH
        else:
            raise ValueError("payer is 'domestic', 'foreign' or 'cash'")
        head = {
            "guid": self.guid(), "appType": "1", "appTime": _time(self._tick()), "appStatus": "2",
            "ebpCode": o["ebpCode"], "ebpName": o["ebpName"], "ebcCode": o["ebcCode"], "ebcName": o["ebcName"],
            "orderNo": o["orderNo"], "payCode": pay_code, "payName": pay_name,
            "payNo": f"PN{received:%Y%m%d}{self._digits(14)}" if payer != "cash" else None,
            "charge": money(charge), "currency": o["currency"], "accountingDate": _time(received), "note": None,
        }
        return Doc("collection", _finish("Receipts", head, overrides), [], dict(order.meta))

    def waybill(self, order: Doc, parties: ExportParties, **overrides: Any) -> Doc:
        """An export waybill 505 for ``order``'s parcel (it names no order: §8.2)."""
        rng, o, meta = self.rng, order.head, order.meta
        prefix = "".join(chr(65 + b % 26) for b in hashlib.sha1(parties.logistics.code.encode()).digest()[:2])
        info = "；".join(f"{line['itemName']}*{number(Decimal(line['qty']))}" for line in order.lines)
        freight = o.get("freight") or "0.00"
        head = {
            "guid": self.guid(), "appType": "1", "appTime": _time(self._tick()), "appStatus": "2",
            "logisticsCode": parties.logistics.code, "logisticsName": parties.logistics.name,
            "logisticsNo": f"{prefix}{self._digits(12)}CN", "freight": freight,
            "insuredFee": money(meta.get("insuredFee", Decimal(0))), "currency": o["currency"],
            "grossWeight": _kg(meta["grossWeight"]), "packNo": "1", "goodsInfo": info[:200],
            "ebcCode": o["ebcCode"] if rng.random() < 0.7 else None,
            "ebcName": o["ebcName"] if rng.random() < 0.7 else None,
            "ebcTelephone": f"0571{self._digits(8)}" if rng.random() < 0.4 else None, "note": None,
        }
        if head["ebcCode"] is None:
            head["ebcName"] = None
        return Doc("export_waybill", _finish("Logistics", head, overrides), [], dict(meta))

    # -- the list --
    def inventory(self, order: Doc, waybill: Doc, parties: ExportParties, *, statistics_flag: str | None = None,
                  trade_mode: str | None = None, with_transport: bool | None = None,
                  lines_overrides: Sequence[Mapping[str, Any]] | None = None, **overrides: Any) -> Doc:
        """The export declaration list 603 joining ``order`` and ``waybill``. Transport data (trafName,
        voyageNo, billNo) is filled when ``with_transport`` (default: mostly) or left for a 607."""
        rng, o, w, meta = self.rng, order.head, waybill.head, order.meta
        trade_mode = trade_mode or meta.get("tradeMode") or TRADE_MODES[o["orderType"]][0]
        statistics_flag = statistics_flag or rng.choice(("A", "B", "B"))
        if statistics_flag not in ("A", "B"):
            raise ValueError("statisticsFlag is A or B")
        bonded = trade_mode == "1210"
        customs, port, _, _ = meta.get("site") or self._site()
        when = self._tick()
        transport = meta.get("shipment") or self._transport(when)
        if with_transport is None:
            with_transport = rng.random() < 0.7
        destination = meta.get("destination") or rng.choice(DESTINATIONS)
        products = meta.get("products") or ()
        inv_lines = []
        for i, line in enumerate(order.lines):
            p = products[i] if i < len(products) else next(g for g in parties.goods if g.name == line["itemName"])
            qty = Decimal(line["qty"])
            item = {
                "gnum": line["gnum"], "itemNo": line["itemNo"][:20],
                "itemRecordNo": f"{customs}{self._digits(8)}" if bonded else None,
                "itemName": line["itemName"] if rng.random() < 0.7 else None,
                "gcode": p.gcode, "gname": line["itemName"], "gmodel": p.gmodel,
                "barCode": line.get("barCode") or NO_BARCODE, "country": destination, "currency": line["currency"],
                "qty": line["qty"], "qty1": number(qty * Decimal(p.qty1)),
                "qty2": number(qty * Decimal(p.qty2)) if p.unit2 else None,
                "unit": line["unit"], "unit1": p.unit1, "unit2": p.unit2,
                "price": line["price"], "totalPrice": line["totalPrice"], "note": None,
            }
            item.update(_line_overrides(lines_overrides, i))
            inv_lines.append(_finish("InventoryList", item))
        gross = Decimal(w.get("grossWeight") or meta.get("grossWeight") or "1")
        net = min(Decimal(meta.get("netWeight") or gross * Decimal("0.9")), gross)
        packages = 1 if o["orderType"] == "E" else max(1, int(gross // 20))
        head = {
            "guid": self.guid(), "appType": "1", "appTime": _time(when), "appStatus": "2",
            "customsCode": customs, "ebpCode": o["ebpCode"], "ebpName": o["ebpName"], "orderNo": o["orderNo"],
            "logisticsCode": w["logisticsCode"], "logisticsName": w["logisticsName"], "logisticsNo": w["logisticsNo"],
            "copNo": self._cop_no("QD", when), "ieFlag": "E", "portCode": port,
            "ieDate": (when + dt.timedelta(days=rng.randint(0, 2))).strftime("%Y%m%d"),
            "statisticsFlag": statistics_flag,
            "agentCode": parties.agent.code, "agentName": parties.agent.name,
            "ebcCode": o["ebcCode"], "ebcName": o["ebcName"],
            "ownerCode": parties.owner.code, "ownerName": parties.owner.name,
            "iacCode": parties.iac.code if bonded else None, "iacName": parties.iac.name if bonded else None,
            "emsNo": f"T{customs}W{self._digits(6)}" if bonded else None,
            "tradeMode": trade_mode, "trafMode": transport["trafMode"],
            "trafName": transport["trafName"] if with_transport else None,
            "voyageNo": transport["voyageNo"] if with_transport else None,
            "billNo": transport["billNo"] if with_transport else None,
            "totalPackageNo": None, "loctNo": f"{customs}{self._digits(2)}" if rng.random() < 0.15 else None,
            "licenseNo": None, "country": destination, "POD": destination,
            "freight": o.get("freight") or "0.00", "fCurrency": o["currency"], "fFlag": "3",
            "insuredFee": money(meta.get("insuredFee", Decimal(0))), "iCurrency": o["currency"], "iFlag": "3",
            "wrapType": rng.choice(("2", "2", "4", "6")) if o["orderType"] == "E" else rng.choice(("2", "4")),
            "packNo": str(packages), "grossWeight": _kg(gross), "netWeight": _kg(net), "note": None,
        }
        out_meta = dict(meta, tradeMode=trade_mode, transport=transport, products=products)
        return Doc("export_inventory", _finish("InventoryHead", head, overrides), inv_lines, out_meta)

    def invt_no(self, inventory: Doc) -> str:
        """A list number as customs would assign it: office + year + E + 9-digit serial (§8.2).
        Remembered on the list (``meta["invtNo"]``) for the documents that follow it."""
        if "invtNo" not in inventory.meta:
            h = inventory.head
            inventory.meta["invtNo"] = h.get("invtNo") or f"{h['customsCode']}{h['appTime'][:4]}E{self._digits(9)}"
        return inventory.meta["invtNo"]

    def cancel(self, inventory: Doc, parties: ExportParties, invt_no: str | None = None, **overrides: Any) -> Doc:
        """Withdraw a list 605, by its ``invtNo``."""
        i = inventory.head
        when = self._tick(600, 86400)
        head = {
            "guid": self.guid(), "appType": "1", "appTime": _time(when), "appStatus": "2",
            "customsCode": i["customsCode"], "copNo": self._cop_no("CX", when), "invtNo": invt_no or self.invt_no(inventory),
            "reason": self.rng.choice(CANCEL_REASONS), "agentCode": i["agentCode"], "agentName": i["agentName"],
            "ebcCode": i["ebcCode"], "ebcName": i["ebcName"], "note": None,
        }
        return Doc("export_cancel", _finish("InvtCancel", head, overrides), [], dict(inventory.meta))

    def declaration(self, parties: ExportParties, *, order_type: str = "E", trade_mode: str | None = None,
                    statistics_flag: str | None = None, lines: int = 1, collection: bool | None = None,
                    shipment: Mapping[str, Any] | None = None, with_transport: bool | None = None,
                    **overrides: Any) -> dict[str, Doc]:
        """Order, receipt (when ``collection``; by default only where the list needs one: orderType
        E), waybill and list for one sale, all agreeing (§8.2). Overrides go to the order."""
        order = self.order(parties, order_type=order_type, trade_mode=trade_mode, lines=lines, shipment=shipment,
                           **overrides)
        out = {"order": order}
        if collection if collection is not None else order_type in NEEDS_COLLECTION:
            out["collection"] = self.collection(order, parties)
        out["waybill"] = self.waybill(order, parties)
        out["inventory"] = self.inventory(order, out["waybill"], parties, statistics_flag=statistics_flag,
                                          with_transport=with_transport)
        return out

    # -- transport: 607, 507, 509 --
    def _leg(self, parcels: Sequence[Parcel], transport: Mapping[str, Any] | None) -> tuple[dict[str, Any], tuple]:
        """The transport and site a set of parcels travel under: given, or their first list's, or new."""
        if transport is None:
            first_waybill, first_list = parcels[0] if parcels else (None, None)
            source = first_list or first_waybill
            transport = (source.meta.get("shipment") or source.meta.get("transport")) if source else None
            transport = transport or self._transport(self.clock)
        site = transport.get("site") or (parcels[0][0].meta.get("site") if parcels else None) or self._site()
        return dict(transport), site

    def consolidation(self, items: Sequence[Doc | Mapping[str, Doc]], parties: ExportParties, *,
                      transport: Mapping[str, Any] | None = None, per_part: int | None = None,
                      with_invt_no: bool | None = None, **overrides: Any) -> list[Doc]:
        """清单总分单 607: the parcels of ``items`` (declarations or waybills) under one master bill
        (``billNo``, ``trafName``, ``voyageNo``), in ``msgCount`` parts of ``per_part`` lines. A line
        names its list's ``invtNo`` when ``with_invt_no`` (default: when the list has one)."""
        parcels = _parcels(items)
        if not parcels:
            raise ValueError("a 607 groups at least one waybill")
        leg, site = self._leg(parcels, transport)
        when = self._tick()
        cop_no = self._cop_no("ZF", when)
        truck = self._plate(site) if self.rng.random() < 0.5 else None
        bags = [f"PLT{self._digits(8)}" for _ in range(max(1, len(parcels) // 20))] if self.rng.random() < 0.5 else None
        chunks = _parts(parcels, per_part)
        docs = []
        for seq, chunk in enumerate(chunks, 1):
            lines = []
            for n, (w, inv) in enumerate(chunk, 1):
                invt = inv.meta.get("invtNo") if inv is not None else None
                if with_invt_no is True and inv is not None:
                    invt = self.invt_no(inv)
                lines.append(_finish("WayBillList", {
                    "gnum": n, "totalPackageNo": bags[(n - 1) % len(bags)] if bags else None,
                    "logisticsNo": w.head["logisticsNo"], "invtNo": invt if with_invt_no is not False else None,
                    "note": None,
                }))
            gross = sum((Decimal(w.head.get("grossWeight") or "0") for w, _ in chunk), Decimal(0))
            head = {
                "guid": self.guid(), "appType": "1", "appTime": _time(when), "appStatus": "2",
                "customsCode": site[0], "copNo": cop_no, "agentCode": parties.agent.code, "agentName": parties.agent.name,
                "loctNo": None, "trafMode": leg["trafMode"], "trafName": leg["trafName"], "voyageNo": leg["voyageNo"],
                "billNo": leg["billNo"], "domesticTrafNo": truck, "grossWeight": _kg(gross),
                "logisticsCode": parties.logistics.code, "logisticsName": parties.logistics.name,
                "msgCount": len(chunks), "msgSeqNo": seq, "note": None,
            }
            docs.append(Doc("consolidation", _finish("WayBillHead", head, overrides), lines,
                            {"transport": leg, "site": site, "parcels": chunk}))
        return docs

    def arrival(self, items: Sequence[Doc | Mapping[str, Doc]], parties: ExportParties, *,
                transport: Mapping[str, Any] | None = None, bill_only: bool = False, per_part: int | None = None,
                **overrides: Any) -> list[Doc]:
        """运抵单 507 by the site operator: the parcels of ``items`` arrived at the export site, in parts
        of ``per_part`` lines; ``bill_only`` sends one head naming only the master ``billNo`` (every
        waybill a 607 put under it, §8.2)."""
        parcels = _parcels(items)
        leg, site = self._leg(parcels, transport)
        if not parcels and not bill_only:
            raise ValueError("an arrival with lines names at least one waybill")
        when = self._tick()
        cop_no = self._cop_no("YD", when)
        chunks = [[]] if bill_only else _parts(parcels, per_part)
        logistics = parties.logistics
        docs = []
        for seq, chunk in enumerate(chunks, 1):
            lines = [_finish("ArrivalList", {"gnum": n, "logisticsNo": w.head["logisticsNo"], "note": None})
                     for n, (w, _) in enumerate(chunk, 1)]
            head = {
                "guid": self.guid(), "appType": "1", "appTime": _time(when), "appStatus": "2",
                "customsCode": site[0], "copNo": cop_no, "operatorCode": parties.operator.code,
                "operatorName": parties.operator.name, "loctNo": None, "ieFlag": "E", "trafMode": leg["trafMode"],
                "billNo": leg.get("billNo") if bill_only or leg["trafMode"] != "6" or self.rng.random() < 0.5 else None,
                "domesticTrafNo": self._plate(site), "logisticsCode": logistics.code, "logisticsName": logistics.name,
                "msgCount": len(chunks), "msgSeqNo": seq, "note": None,
            }
            docs.append(Doc("arrival", _finish("ArrivalHead", head, overrides), lines,
                            {"transport": leg, "site": site, "parcels": chunk}))
        return docs

    def departure(self, items: Sequence[Doc | Mapping[str, Doc]], parties: ExportParties, *,
                  transport: Mapping[str, Any] | None = None, per_part: int | None = None, **overrides: Any) -> list[Doc]:
        """离境单 509 by the logistics firm: the parcels of ``items`` left the country (``leaveTime``)."""
        parcels = _parcels(items)
        if not parcels:
            raise ValueError("a departure names at least one waybill")
        leg, site = self._leg(parcels, transport)
        when = self._tick()
        left = when - dt.timedelta(seconds=self.rng.randint(600, 6 * 3600))
        cop_no = self._cop_no("LJ", when)
        chunks = _parts(parcels, per_part)
        postal = leg["trafMode"] == "6"
        docs = []
        for seq, chunk in enumerate(chunks, 1):
            lines = [_finish("DepartureList", {"gnum": n, "logisticsNo": w.head["logisticsNo"], "note": None})
                     for n, (w, _) in enumerate(chunk, 1)]
            head = {
                "guid": self.guid(), "appType": "1", "appTime": _time(when), "appStatus": "2",
                "customsCode": site[0], "copNo": cop_no,
                "logisticsCode": parties.logistics.code, "logisticsName": parties.logistics.name,
                "trafMode": leg["trafMode"], "trafName": None if postal else leg["trafName"],
                "voyageNo": None if postal else leg["voyageNo"], "billNo": None if postal else leg["billNo"],
                "leaveTime": _time(left), "msgCount": len(chunks), "msgSeqNo": seq, "note": None,
            }
            docs.append(Doc("departure", _finish("DepartureHead", head, overrides), lines,
                            {"transport": leg, "site": site, "parcels": chunk}))
        return docs

    # -- returns: 213, 215 --
    def refund(self, inventory: Doc, parties: ExportParties, invt_no: str | None = None, *,
               gnums: Sequence[int] | None = None, partial: bool = False, inbound: bool = False,
               lines_overrides: Sequence[Mapping[str, Any]] | None = None, **overrides: Any) -> Doc:
        """退货申请 213 for ``inventory`` (by its ``invtNo``): lines ``gnums`` of it (default all), each
        with the original quantity or, when ``partial``, less. ``inbound``: the goods come back under a
        new inbound waybill number rather than the outbound one."""
        rng, i = self.rng, inventory.head
        when = self._tick(86400, 20 * 86400)
        chosen = [line for line in inventory.lines if gnums is None or int(line["gnum"]) in set(gnums)]
        if not chosen:
            raise ValueError("a return names at least one line of the original list")
        lines = []
        for k, line in enumerate(chosen):
            qty = Decimal(line["qty"])
            back = qty if not partial or qty <= 1 else Decimal(rng.randint(1, int(qty) - 1)) if qty == int(qty) else qty
            share = back / qty
            item = {
                "gnum": line["gnum"], "gcode": line["gcode"], "gname": line["gname"], "gmodel": line["gmodel"],
                "qty": number(back), "qty1": number(Decimal(line["qty1"]) * share),
                "unit": line["unit"], "unit1": line["unit1"],
                "qty2": number(Decimal(line["qty2"]) * share) if line.get("qty2") else None, "unit2": line.get("unit2"),
                "note": None,
            }
            item.update(_line_overrides(lines_overrides, k))
            lines.append(_finish("InvtRefundList", item))
        transport = inventory.meta.get("transport") or self._transport(when)
        logistics_no = i["logisticsNo"] if not inbound else f"RT{self._digits(12)}"
        country = i["country"] if i["country"] != CNY else rng.choice(DESTINATIONS)
        head = {
            "guid": self.guid(), "appType": "1", "appTime": _time(when), "appStatus": "2",
            "customsCode": i["customsCode"], "loctNo": i.get("loctNo"),
            "ebpCode": i["ebpCode"], "ebpName": i["ebpName"], "ebcCode": i["ebcCode"], "ebcName": i["ebcName"],
            "logisticsNo": logistics_no, "logisticsCode": i["logisticsCode"], "logisticsName": i["logisticsName"],
            "coElNo": self._cop_no("TH", when), "invtNo": invt_no or self.invt_no(inventory),
            "tradeMode": RETURN_MODES.get(i["tradeMode"], "9661"),
            "agentCode": i["agentCode"], "agentName": i["agentName"],
            "billNo": logistics_no,  # no master bill on the way back: the waybill number (§8.3)
            "ieFlag": "I", "trafMode": transport["trafMode"], "trafName": transport["trafName"],
            "portCode": i["portCode"], "reason": rng.choice(REFUND_REASONS), "country": country,
            "voyageNo": transport["voyageNo"], "note": None,
        }
        return Doc("export_refund", _finish("InvtRefundHead", head, overrides), lines,
                   dict(inventory.meta, original=inventory))

    def tally(self, refund: Doc, parties: ExportParties, **overrides: Any) -> Doc:
        """退货理货 215 by the site operator: the returned parcel of ``refund`` recorded at the site."""
        r = refund.head
        when = self._tick(3600, 5 * 86400)
        site = refund.meta.get("site") or self._site()
        head = {
            "guid": self.guid(), "appType": "1", "appTime": _time(when), "appStatus": "2",
            "customsCode": r["customsCode"], "operatorCode": parties.operator.code, "operatorName": parties.operator.name,
            "logisticsCode": r["logisticsCode"], "logisticsName": r["logisticsName"], "logisticsNo": r["logisticsNo"],
            "invtNo": r["invtNo"] if self.rng.random() < 0.8 else None,
            "coElNo": f"LH{when:%y%m%d}{next(self._serial):06d}{self._digits(2)}",  # ≤ 20 on 215
            "billNo": r["billNo"], "ieFlag": "I", "trafMode": r["trafMode"], "trafName": r["trafName"],
            "voyageNo": r["voyageNo"], "location": f"{site[2]}退货区{self.rng.randint(1, 9)}号库位", "note": None,
        }
        return Doc("refund_tally", _finish("InvtRefundDetail", head, overrides), [], dict(refund.meta))

    # -- summary: 701, 792 --
    def summary(self, inventories: Sequence[Doc | str], parties: ExportParties, *,
                window: tuple[str, str] | None = None, summary_flag: str = "1", item_name_flag: str = "1",
                per_part: int | None = None, **overrides: Any) -> list[Doc]:
        """汇总申请 701 by the agent: ``inventories`` (B lists, or any invtNo) folded into one customs
        declaration, or every list in ``window`` (startTime, endTime; then no lines), in parts."""
        if summary_flag not in ("1", "2") or item_name_flag not in ("1", "0"):
            raise ValueError("summaryFlag is 1 or 2, itemNameFlag 1 or 0")
        lists = [x for x in inventories if isinstance(x, Doc)]
        if any(x.head.get("statisticsFlag") != "B" for x in lists):
            raise ValueError("only statisticsFlag B lists are summarised (pass invtNo strings to name others)")
        invt_nos = [x if isinstance(x, str) else self.invt_no(x) for x in inventories]
        if window is None and not invt_nos:
            raise ValueError("a summary without a time window names at least one list")
        if window is not None and window[1] < window[0]:
            raise ValueError("endTime must not be before startTime")
        when = self._tick(86400, 10 * 86400)
        customs = lists[0].head["customsCode"] if lists else self._site()[0]
        cop_no = self._cop_no("HZ", when)
        chunks = [[]] if window is not None else _parts(invt_nos, per_part)
        docs = []
        for seq, chunk in enumerate(chunks, 1):
            head = {
                "guid": self.guid(), "appType": "1", "appTime": _time(when), "appStatus": "2",
                "customsCode": customs, "copNo": cop_no,
                "agentCode": parties.agent.code, "agentName": parties.agent.name,
                "ebcCode": parties.ebc.code, "ebcName": parties.ebc.name,
                "declAgentCode": parties.decl_agent.code, "declAgentName": parties.decl_agent.name,
                "startTime": window[0] if window else None, "endTime": window[1] if window else None,
                "loctNo": None, "summaryFlag": summary_flag, "itemNameFlag": item_name_flag,
                "msgCount": len(chunks), "msgSeqNo": seq, "note": None,
            }
            lines = [_finish("SummaryApplyList", {"invtNo": n}) for n in chunk]
            docs.append(Doc("summary", _finish("SummaryApplyHead", head, overrides), lines,
                            {"lists": [x for x in lists if x.meta.get("invtNo") in set(chunk)]}))
        return docs

    def sum_no(self, summary: Doc | Sequence[Doc]) -> str:
        """The summary number customs gives back in 702: office + year + 10-digit serial (18)."""
        first = summary if isinstance(summary, Doc) else summary[0]
        if "sumNo" not in first.meta:
            first.meta["sumNo"] = f"{first.head['customsCode']}{first.head['appTime'][:4]}H{self._digits(9)}"
        return first.meta["sumNo"]

    def summary_result(self, summary: Doc | Sequence[Doc], inventories: Sequence[Doc], *, sum_no: str | None = None,
                       decl_seq_no: str | None = None, stage: str = "built", per_part: int | None = None,
                       **overrides: Any) -> list[Doc]:
        """汇总结果 792, customs' answer to ``summary``: the declaration built from ``inventories``.

        Each list line maps to a declaration item ``gseqno``: lines group by ``gcode`` and, with
        itemNameFlag 1, the line's item name. ``stage``: "built" (declSeqNo only), "temp" (+decTmpNo),
        "pre" (+decPreNo), "entered" (+entryId, no lines: a later 792 for the same declSeqNo, §8.3).
        """
        if stage not in ("built", "temp", "pre", "entered"):
            raise ValueError("stage is built, temp, pre or entered")
        parts = [summary] if isinstance(summary, Doc) else list(summary)
        s = parts[0].head
        sum_no = sum_no or self.sum_no(parts[0])
        when = self._tick(600, 2 * 86400)
        decl_seq_no = decl_seq_no or f"E{when:%Y%m%d}{self._digits(9)}"
        year = when.strftime("%Y")
        by_name = s.get("itemNameFlag") == "1"
        items: dict[tuple[str, str], int] = {}
        rows = []
        for inv in inventories:
            for line in inv.lines:
                key = (line["gcode"], line.get("itemName") or line["gname"] if by_name else "")
                gseqno = items.setdefault(key, len(items) + 1)
                rows.append({"invtNo": self.invt_no(inv), "logisticsNo": inv.head["logisticsNo"], "gseqno": gseqno,
                             "gnum": line["gnum"], "gcode": line["gcode"]})
        if stage == "entered":
            rows = []
        chunks = _parts(rows, per_part)
        gross = sum((Decimal(inv.head["grossWeight"]) for inv in inventories), Decimal(0))
        net = sum((Decimal(inv.head["netWeight"]) for inv in inventories), Decimal(0))
        staged = ("built", "temp", "pre", "entered").index(stage)
        docs = []
        for seq, chunk in enumerate(chunks, 1):
            head = {
                "guid": self.guid(), "customsCode": s["customsCode"], "sumNo": sum_no,
                "opDate": when.strftime("%Y%m%d%H%M%S") + f"{self.rng.randrange(1000):03d}",
                "declSeqNo": decl_seq_no,
                "decTmpNo": f"{s['customsCode']}{year}T{self._digits(9)}" if staged >= 1 else None,
                "decPreNo": f"{s['customsCode']}{year}0{self._digits(9)}" if staged >= 2 else None,
                "entryId": f"{s['customsCode']}{year}0{self._digits(9)}" if staged >= 3 else None,
                "decState": ("1", "2", "3", "10")[staged],
                "agentCode": s["agentCode"], "agentName": s["agentName"], "ebcCode": s["ebcCode"], "ebcName": s["ebcName"],
                "declAgentCode": s["declAgentCode"], "declAgentName": s["declAgentName"],
                "grossWeight": _kg(gross) if gross else "0", "netWeight": _kg(net) if net else "0",
                "msgCount": len(chunks), "msgSeqNo": seq, "note": None,
            }
            lines = [_finish("SummaryResultList", row) for row in chunk]
            docs.append(Doc("summary_result", _finish("SummaryResultHead", head, overrides), lines, {}))
        return docs

    # -- serialisation --
    def message(self, code: str, docs: Doc | Sequence[Doc], *, sender: Party | None = None, guid: str | None = None,
                sign: bool | None = None, app_status: str | None = None, encoding: str = "UTF-8",
                subscribers: Sequence[Party] = (), identity: tuple[Any, Any] | None = None,
                extend: tuple[str, str, etree._Element] | None = None) -> bytes:
        """A complete export ``CEB{code}Message`` holding ``docs``, transmitted by ``sender``.

        Signed by default where the spec's table wants it (catalog ``must_sign``: "always", or
        "declared" when a document has appStatus 2), with ``identity`` or the test identity;
        ``sign`` forces either way. The signature goes before ``ExtendMessage`` (``extend``: name,
        version, the element it carries). 792 is customs' message: no sender, no signature.
        """
        mtype = MESSAGES.get(code)
        if mtype is None:
            raise ValueError(f"CEB{code}Message is not an export business message")
        docs = [docs] if isinstance(docs, Doc) else list(docs)
        if not 1 <= len(docs) <= mtype.max_docs:
            raise ValueError(f"CEB{code}Message holds 1 to {mtype.max_docs} documents, not {len(docs)}")
        if any(d.kind != mtype.kind for d in docs):
            raise ValueError(f"CEB{code}Message holds {mtype.kind} documents only")
        if mtype is SUMMARY_RESULT:
            sender, subscribers, extend = None, (), None
        elif sender is None:
            raise TypeError(f"CEB{code}Message needs a sender (BaseTransfer)")
        if sign is None:
            declared = any((app_status or d.head.get("appStatus")) == "2" for d in docs)
            sign = mtype.must_sign == "always" or (mtype.must_sign == "declared" and declared)
        ext = None
        if extend is not None:
            ceb = f"{{{CEB_NS}}}"
            ext = etree.Element(ceb + "ExtendMessage")
            etree.SubElement(ext, ceb + "name").text = extend[0]
            etree.SubElement(ext, ceb + "version").text = extend[1]
            etree.SubElement(ext, ceb + "Message").append(extend[2])
        return render(mtype, docs, guid=guid or self.guid(), sender=sender, sign=sign, app_status=app_status,
                      encoding=encoding, subscribers=subscribers, identity=identity, extend=ext)

    def envelope(self, message: bytes, *, sender: Party | None = None, sender_id: str | None = None,
                 cop_msg_id: str | None = None) -> bytes:
        """``message`` in a ``DxpMsg`` addressed to customs' export receiver (DXPEDCCEB0000003)."""
        if sender_id is None:
            if sender is None:
                raise TypeError("envelope needs sender or sender_id")
            sender_id = sender.dxp_id
        return self.wrap_dxp(message, sender_id=sender_id, cop_msg_id=cop_msg_id)


__all__ = [
    "EXPORT_RECEIVER",
    "INDUSTRIES",
    "MESSAGES",
    "TRADE_MODES",
    "ExportBuilder",
    "ExportParties",
    "ExportProduct",
]
