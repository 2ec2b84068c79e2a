"""Builds realistic, valid CEB import messages of every filed type, for tests, demos and load runs.

Everything is invented here (firms, people, goods) and deterministic: one seed, one sequence of
calls, byte-identical output. No wall clock is read: times run on a clock that starts at a date
derived from the seed and moves forward with every document.

A ``Doc`` is one business document (a head and its lines) as strings in schema order; ``message``
serialises one or more into a ``CEBnnnMessage`` and signs it when the type requires a signature.
Documents built from other documents agree with them as CEB.md §2 requires, and every document
keeps the rules of CEB.md §3 (amounts, gnum, check digits, weights) unless an override breaks them
on purpose.

Overrides: ``field=value`` replaces a head field after everything is computed (so overriding a
derived amount such as ``acturalPaid`` makes an inconsistent document, which negative tests want),
``field=None`` removes it. The order's ``freight`` and ``discount`` are inputs: overriding them
recomputes the totals. ``lines_overrides`` is a list of dicts applied to the lines by position; on
an order a changed ``qty`` or ``price`` recomputes ``totalPrice`` and the totals unless
``totalPrice`` is overridden too.

Direct-purchase orders that should arrive together (one flight, one master bill, one delivery note)
share a ``shipment()``: ``declaration(parties, shipment=s)`` for each, then ``delivery(waybills)``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from lxml import etree

from schemas import signature
from schemas.catalog import CEB_NS, DXP_NS, FILED, MessageType
from schemas.fields import names
from schemas.identifiers import make_customs_code, make_id_number, make_uscc

CNY = "142"
CUSTOMS_RECEIVER = "DXPEDCCEB0000002"
VAT_RATE = Decimal("0.13")
RETAIL_FACTOR = Decimal("0.7")  # within the limits, VAT and consumption tax are charged at 70 % (CEB.md §4)
CONSUMPTION_TAX = {"2204210000": Decimal("0.10")}  # wine; nothing else in our catalogue carries it
PER_TRANSACTION_LIMIT = Decimal(5000)


# --- invented reference data ------------------------------------------------------------------


class Product(NamedTuple):
    gcode: str  # 10-digit HS code
    name: str
    gmodel: str
    unit: str  # trade unit (JGS-20): 142 bottle, 122 tin, 007 piece, 011 item, 012 tube
    unit1: str  # first legal unit
    qty1: str  # legal quantity per trade unit
    unit2: str | None
    qty2: str | None
    country: str  # origin: 116 Japan, 502 USA, 609 New Zealand, 305 France, 601 Australia, 307 Italy, 303 UK
    price: tuple[int, int]  # plausible retail price range, CNY
    net_kg: str  # net weight per trade unit
    ean: str  # GS1 prefix matching the origin


PRODUCTS: tuple[Product, ...] = (
    Product("3304990099", "澜屿玻尿酸保湿修护面霜", "澜屿牌|50ml/瓶|水、甘油、透明质酸钠、角鲨烷|面部保湿护理",
            "142", "035", "0.065", "011", "1", "116", (128, 420), "0.120", "45"),
    Product("3304990099", "铂岚烟酰胺焕亮精华液", "铂岚牌|30ml/瓶|水、烟酰胺、丁二醇、泛醇|提亮肤色",
            "142", "035", "0.045", "011", "1", "502", (99, 290), "0.090", "0"),
    Product("1901101000", "牧语婴幼儿配方奶粉1段", "牧语牌|800g/罐|0-6月龄|乳基婴儿配方奶粉",
            "122", "035", "0.8", None, None, "609", (198, 368), "0.850", "94"),
    Product("2204210000", "莱蒂庄园赤霞珠干红葡萄酒", "莱蒂庄园|750ml/瓶|酒精度13.5%vol|2019年份|赤霞珠",
            "142", "095", "0.75", "035", "1.25", "305", (128, 680), "1.250", "3"),
    Product("2106909090", "维恩康复合维生素片", "维恩康牌|90粒/瓶|维生素A、C、D、E及B族|成人膳食营养补充",
            "142", "035", "0.15", None, None, "601", (89, 259), "0.180", "93"),
    Product("4202210090", "卡维拉头层牛皮手提包", "卡维拉牌|头层牛皮|32×24×12cm|女式手提包",
            "007", "007", "1", "035", "0.9", "307", (1280, 3800), "0.900", "80"),
    Product("3401300000", "安恩氨基酸洁面乳", "安恩牌|120g/支|氨基酸表面活性剂|洁面用",
            "012", "035", "0.12", None, None, "116", (69, 159), "0.140", "49"),
    Product("0409000000", "澳纽星麦卢卡蜂蜜UMF10+", "澳纽星牌|250g/瓶|UMF10+|天然蜂蜜",
            "142", "035", "0.25", None, None, "609", (158, 398), "0.320", "94"),
    Product("6110110000", "苏格朗羊毛针织开衫", "苏格朗牌|100%羊毛|针织|女式开襟衫",
            "011", "011", "1", "035", "0.35", "303", (399, 1200), "0.350", "50"),
)

# Cities firms register in: (name, 6-digit region code).
FIRM_CITIES = (
    ("杭州", "330108"), ("宁波", "330206"), ("上海", "310115"), ("深圳", "440304"), ("广州", "440106"),
    ("郑州", "410105"), ("重庆", "500112"), ("厦门", "350206"), ("天津", "120116"), ("成都", "510116"),
)
FIRM_WORDS = ["云栈", "海拓", "优选", "启航", "聚禾", "环球", "蓝鲸", "星链", "丰泽", "易达", "鸿运", "嘉汇", "新桥", "联捷", "瑞通", "泰和", "中闽", "远帆", "臻品", "万邦"]
ROLE_SUFFIXES = {
    "ebp": ("网络科技有限公司", "跨境电子商务有限公司", "电子商务有限公司"),
    "ebc": ("国际贸易有限公司", "跨境电子商务有限公司", "进出口有限公司"),
    "pay": ("支付科技有限公司", "网络支付有限公司"),
    "logistics": ("国际物流有限公司", "供应链管理有限公司", "速运有限公司"),
    "agent": ("报关有限公司", "国际货运代理有限公司", "供应链服务有限公司"),
    "operator": ("跨境电商监管中心有限公司", "国际快件监管中心有限公司", "保税物流中心有限公司"),
    "area": ("保税仓储有限公司", "保税物流有限公司"),
}

# Buyers' addresses: (province, city, district, region code, streets, estates).
ADDRESSES = (
    ("浙江省", "杭州市", "西湖区", "330106", ("文三路", "天目山路", "古墩路", "教工路")),
    ("上海市", "上海市", "浦东新区", "310115", ("张杨路", "世纪大道", "锦绣路", "东方路")),
    ("广东省", "深圳市", "南山区", "440305", ("科技园南路", "后海大道", "南海大道", "桃园路")),
    ("北京市", "北京市", "朝阳区", "110105", ("建国路", "朝阳北路", "望京街", "酒仙桥路")),
    ("江苏省", "南京市", "鼓楼区", "320106", ("中山北路", "湖南路", "广州路", "汉中门大街")),
    ("四川省", "成都市", "武侯区", "510107", ("人民南路四段", "科华北路", "武侯祠大街", "芳草街")),
    ("湖北省", "武汉市", "洪山区", "420111", ("珞喻路", "雄楚大道", "鲁磨路", "关山大道")),
    ("福建省", "厦门市", "思明区", "350203", ("湖滨南路", "嘉禾路", "莲前西路", "厦禾路")),
    ("山东省", "青岛市", "市南区", "370202", ("香港中路", "东海西路", "宁夏路", "福州南路")),
    ("河南省", "郑州市", "金水区", "410105", ("花园路", "经三路", "农业路", "东风路")),
)
ESTATES = ["锦绣花园", "翠苑小区", "云溪雅苑", "金色家园", "阳光城", "望江公寓", "书香名邸", "绿城桂花园", "滨江花城", "紫荆苑"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙陶黎贺顾毛郝龚邵万钱严武戴孔汤"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华玉兰萍鹏辉建红宇晨欣怡佳涵轩浩然彤诺远博文嘉梦瑶思雨子萱俊琳"
MOBILE_PREFIXES = ["135", "136", "138", "139", "150", "151", "158", "159", "177", "180", "186", "187", "188", "189", "199"]

# Supervised sites: (customs office, port, unloading place).
SITES = (
    ("2991", "2991", "下沙跨境电商监管中心"), ("3105", "3105", "栎社保税物流中心"), ("2244", "2244", "浦东机场快件中心"),
    ("5349", "5349", "前海湾保税港区监管仓"), ("4606", "4604", "新郑综保区监管中心"), ("8013", "8012", "西永综保区监管仓"),
)
AIRLINES = (("999", "CA"), ("784", "CZ"), ("781", "MU"), ("880", "HU"), ("160", "CX"), ("180", "KE"))
VESSELS = ("XIN HAI TONG", "ORIENT PEARL", "JIN YUAN HAI", "HUA HANG 7", "DONG FANG XING")
CANCEL_REASONS = ("消费者申请取消订单", "商品缺货，订单取消", "订购人信息填写有误，申请撤销清单", "重复申报，申请撤销")
REFUND_REASONS = ("商品质量问题，消费者申请退货", "商品与描述不符，退货退款", "七天无理由退货", "运输途中包装破损，退货")


# --- documents and parties --------------------------------------------------------------------


@dataclass
class Party:
    code: str  # 10-char customs code or 18-char USCC
    name: str
    dxp_id: str  # exchange-platform id; 16 chars so that it also fits a DxpMsg SenderId


@dataclass
class Parties:
    ebp: Party
    ebc: Party
    pay: Party
    logistics: Party
    agent: Party
    assure: Party  # the schema allows only the declarer, the seller or the logistics firm
    operator: Party
    area: Party | None = None  # bonded-zone warehouse, needed for 1210

    @classmethod
    def generate(cls, rng: random.Random | int | None = None) -> Parties:
        rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        words = rng.sample(FIRM_WORDS, len(ROLE_SUFFIXES))  # distinct trade names within one set
        made = {role: _firm(rng, role, word) for role, word in zip(ROLE_SUFFIXES, words)}
        assure = made[rng.choice(("ebc", "agent", "logistics"))]
        return cls(assure=assure, **made)

    def registrations(self) -> list[dict[str, Any]]:
        """What the registry must hold for messages naming these parties: one record per enterprise,
        with every role it plays here (``POST /v1/enterprises`` bodies)."""
        held: dict[str, tuple[Party, set[str]]] = {}
        for role in ("ebp", "ebc", "pay", "logistics", "agent", "assure", "operator", "area"):
            party = getattr(self, role)
            if party is not None:
                held.setdefault(party.code, (party, set()))[1].add(role)
        return [{"code": p.code, "name": p.name, "roles": sorted(roles), "dxpId": p.dxp_id} for p, roles in held.values()]

    def sender_for(self, code: str) -> Party:
        """The party that usually transmits message ``code`` (CEB.md §1)."""
        return {"311": self.ebp, "411": self.pay, "511": self.logistics, "513": self.logistics,
                "621": self.agent, "623": self.agent, "625": self.agent, "711": self.operator}[code]


def _firm(rng: random.Random, role: str, word: str) -> Party:
    city, region = rng.choice(FIRM_CITIES)
    code = make_uscc(rng, region) if rng.random() < 0.5 else make_customs_code(rng, region[:4])
    return Party(code, f"{city}{word}{rng.choice(ROLE_SUFFIXES[role])}", f"DXPENT{rng.randrange(10**10):010d}")


@dataclass
class Doc:
    kind: str  # catalog kind: "order", "payment", …
    head: dict[str, str]
    lines: list[dict[str, str]] = field(default_factory=list)
    # Builder-side facts not on the wire (goods, transport, insured fee) that later documents reuse.
    meta: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class _Person:
    name: str
    phone: str
    id_number: str
    address: str
    district: str


# --- amounts ----------------------------------------------------------------------------------

_CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    """Two decimals when exact, else up to five (the N19,5 limit)."""
    if value == value.quantize(_CENT):
        return str(value.quantize(_CENT))
    return str(value.quantize(Decimal("0.00001"), ROUND_HALF_UP).normalize())


def number(value: Decimal) -> str:
    """A quantity: no trailing zeros, at most five decimals."""
    value = value.quantize(Decimal("0.00001"), ROUND_HALF_UP).normalize()
    return f"{value:f}"


def combined_rate(consumption_tax: Decimal = Decimal(0)) -> Decimal:
    """Retail import tax rate within the limits (CEB.md §4): 9.1 % without consumption tax."""
    return (consumption_tax + VAT_RATE) / (1 - consumption_tax) * RETAIL_FACTOR


def retail_tax(lines: Sequence[tuple[Decimal, str]], freight: Decimal, insured_fee: Decimal) -> Decimal:
    """Tax on an order: each line's (totalPrice, gcode) at its rate over a base of goods + freight +
    insured fee, the freight and fee shared in proportion to the line values; rounded to cents."""
    goods = sum((total for total, _ in lines), Decimal(0))
    base = goods + freight + insured_fee
    if goods == 0:
        return (combined_rate() * base).quantize(_CENT, ROUND_HALF_UP)
    rates = [combined_rate(CONSUMPTION_TAX.get(gcode, Decimal(0))) for _, gcode in lines]
    weighted = sum((total * rate for (total, _), rate in zip(lines, rates)), Decimal(0))
    return (weighted * base / goods).quantize(_CENT, ROUND_HALF_UP)


def _ean13(rng: random.Random, prefix: str) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(12 - len(prefix)))
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return body + str(check)


def _finish(node: str, values: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
            direction: str = "import") -> dict[str, str]:
    """Values in schema order as strings, None dropped, overrides applied (None removes)."""
    known = names(node, direction)
    merged = dict(values)
    for key, value in (overrides or {}).items():
        if key not in known:
            raise TypeError(f"{node} has no field {key!r}")
        merged[key] = value
    return {k: str(merged[k]) for k in known if merged.get(k) is not None}


def _line_overrides(lines_overrides: Sequence[Mapping[str, Any]] | None, i: int) -> dict[str, Any]:
    return dict(lines_overrides[i]) if lines_overrides and i < len(lines_overrides) else {}


# --- the builder ------------------------------------------------------------------------------


class BuilderCore:
    """What every builder shares: the seeded random source, the clock, ids, the envelope."""

    receiver = CUSTOMS_RECEIVER  # customs' exchange id for this direction (CEB.md §6)

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        # The clock: a working-day morning in 2023–2024, moved forward by every document.
        start = dt.datetime(2023, 1, 1, 8, 30) + dt.timedelta(days=self.rng.randrange(730))
        self.clock = start + dt.timedelta(seconds=self.rng.randrange(10 * 3600))

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper()

    def _tick(self, low: int = 20, high: int = 900) -> dt.datetime:
        self.clock += dt.timedelta(seconds=self.rng.randint(low, high))
        return self.clock

    def _digits(self, n: int) -> str:
        return f"{self.rng.randrange(10**n):0{n}d}"

    def wrap_dxp(self, message: bytes, *, sender_id: str, receiver_id: str | None = None,
                 msg_type: str | None = None, cop_msg_id: str | None = None) -> bytes:
        """``wrap_dxp`` with this builder's clock and ids, addressed to customs by default."""
        return wrap_dxp(message, sender_id=sender_id, receiver_id=receiver_id or self.receiver, msg_type=msg_type,
                        cop_msg_id=cop_msg_id or self.guid(), created=self._tick(1, 30))


class MessageBuilder(BuilderCore):
    # -- small generators --
    def parties(self) -> Parties:
        return Parties.generate(self.rng)

    def _person(self) -> _Person:
        rng = self.rng
        province, city, district, region, streets = rng.choice(ADDRESSES)
        place = province + ("" if city == province else city) + district
        address = (f"{place}{rng.choice(streets)}{rng.randint(1, 999)}号{rng.choice(ESTATES)}"
                   f"{rng.randint(1, 28)}幢{rng.randint(1, 4)}单元{rng.randint(1, 32)}{rng.randint(1, 4):02d}室")
        given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
        phone = rng.choice(MOBILE_PREFIXES) + self._digits(8)
        id_region = region if rng.random() < 0.6 else rng.choice(ADDRESSES)[3]  # born elsewhere, sometimes
        birth = f"{rng.randint(1965, 2003)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"  # adults
        return _Person(rng.choice(SURNAMES) + given, phone, make_id_number(rng, id_region, birth), address, region)

    def _transport(self, when: dt.datetime) -> dict[str, str]:
        """Cross-border leg of a direct-purchase (9610) shipment: air mostly, sea sometimes."""
        rng = self.rng
        if rng.random() < 0.75:
            prefix, carrier = rng.choice(AIRLINES)
            serial = rng.randrange(10**7)
            return {"trafMode": "5", "trafNo": f"{carrier}{rng.randint(101, 9899)}",
                    "voyageNo": when.strftime("%Y%m%d"),  # the flight date
                    "billNo": f"{prefix}-{serial:07d}{serial % 7}"}  # air waybill: 7 digits + mod-7 check
        letters = "".join(rng.choice("ABCDEFGHJKLMNPRSTUWXYZ") for _ in range(4))
        return {"trafMode": "2", "trafNo": rng.choice(VESSELS),
                "voyageNo": f"{rng.randint(1, 99):03d}{rng.choice('EWSN')}", "billNo": f"{letters}{self._digits(10)}"}

    def shipment(self) -> dict[str, Any]:
        """One direct-purchase consignment (flight or vessel, master bill, site) that several orders
        can share, so that their waybills arrive together under one delivery note (711)."""
        transport = self._transport(self.clock)
        return {**transport, "site": self.rng.choice(SITES), "from": self.rng.choice(("110", "110", "116", "502"))}

    def _product_for(self, order: Doc, i: int, line: Mapping[str, str]) -> Product:
        products = order.meta.get("products")
        if products and i < len(products):
            return products[i]
        return next((p for p in PRODUCTS if p.name == line.get("itemName")), PRODUCTS[0])

    # -- documents --
    def order(self, parties: Parties, *, order_no: str | None = None, lines: int = 1, trade_mode: str | None = None,
              shipment: Mapping[str, Any] | None = None, lines_overrides: Sequence[Mapping[str, Any]] | None = None,
              **overrides: Any) -> Doc:
        if not 1 <= lines <= 99:
            raise ValueError("an order has 1 to 99 lines")
        rng = self.rng
        when = self._tick()
        trade_mode = trade_mode or ("9610" if shipment else rng.choice(("9610", "1210")))
        buyer = self._person()
        consignee = buyer if rng.random() < 0.8 else self._person()  # sometimes a gift to someone else
        budget = Decimal(4000) / lines  # keeps acturalPaid under the CNY 5,000 limit
        # distinct goods while the catalogue lasts, as a real basket mostly is
        products = rng.sample(PRODUCTS, lines) if lines <= len(PRODUCTS) else rng.choices(PRODUCTS, k=lines)
        order_lines, net = [], Decimal(0)
        for i, p in enumerate(products):
            price = Decimal(rng.randint(*p.price) // 10 * 10 + rng.choice((0, 8, 9)))
            qty = rng.choice((1, 1, 1, 2, 2, 3))
            while qty > 1 and qty * price > budget:
                qty -= 1
            if price > budget:
                price = max(Decimal(1), (budget * Decimal("0.9")).quantize(Decimal(1)))
            line = {
                "gnum": i + 1, "itemNo": f"SKU{self._digits(8)}" if rng.random() < 0.7 else None,
                "itemName": p.name, "gmodel": p.gmodel,
                "itemDescribe": f"{p.name}，原装进口" if rng.random() < 0.3 else None,
                "barCode": _ean13(rng, p.ean) if rng.random() < 0.6 else None,
                "unit": p.unit, "qty": qty, "price": money(price), "totalPrice": None,
                "currency": CNY, "country": p.country, "note": None,
            }
            line.update(_line_overrides(lines_overrides, i))
            if line["totalPrice"] is None:
                line["totalPrice"] = money(Decimal(str(line["qty"])) * Decimal(str(line["price"])))
            net += Decimal(str(line["qty"])) * Decimal(p.net_kg)
            order_lines.append(_finish("OrderList", line))

        goods = sum((Decimal(line["totalPrice"]) for line in order_lines), Decimal(0))
        # freight and discount are inputs; None (remove the field) counts as 0 in the sums
        freight = Decimal(str(overrides.get("freight", rng.choice((0, 0, 6, 8, 10, 12, 15, 20))) or 0))
        coupon = 0 if rng.random() < 0.7 else min(rng.choice((5, 10, 20)), (goods / 10).quantize(_CENT))
        discount = Decimal(str(overrides.get("discount", coupon) or 0))
        for key, value in (("freight", freight), ("discount", discount)):
            if overrides.get(key, 0) is not None:
                overrides[key] = money(value)
        insured = Decimal(0) if rng.random() < 0.75 else (goods * Decimal(rng.choice(("0.003", "0.005", "0.01"))))
        insured = insured.quantize(_CENT)
        taxed = [(Decimal(line["totalPrice"]), p.gcode) for line, p in zip(order_lines, products)]
        tax = retail_tax(taxed, freight, insured)
        gross = (net * Decimal(str(rng.uniform(1.08, 1.3))) + Decimal("0.05")).quantize(Decimal("0.001"))
        with_pay = rng.random() < 0.75
        pay_id = when.strftime("%Y%m%d") + self._digits(20)
        head = {
            "guid": self.guid(), "appType": "1", "appTime": when.strftime("%Y%m%d%H%M%S"), "appStatus": "2",
            "orderType": "I", "orderNo": order_no or f"SO{when:%Y%m%d%H%M}{self._digits(6)}",
            "ebpCode": parties.ebp.code, "ebpName": parties.ebp.name,
            "ebcCode": parties.ebc.code, "ebcName": parties.ebc.name,
            "goodsValue": money(goods), "freight": money(freight), "discount": money(discount), "taxTotal": money(tax),
            "acturalPaid": money(goods + freight + tax - discount), "currency": CNY,
            "buyerRegNo": f"U{self._digits(10)}", "buyerName": buyer.name, "buyerTelephone": buyer.phone,
            "buyerIdType": "1", "buyerIdNumber": buyer.id_number,
            "payCode": parties.pay.code if with_pay else None, "payName": parties.pay.name if with_pay else None,
            "payTransactionId": pay_id if with_pay else None,
            "batchNumbers": f"LOT{when:%y%m}{self._digits(3)}" if rng.random() < 0.1 else None,
            "consignee": consignee.name, "consigneeTelephone": consignee.phone, "consigneeAddress": consignee.address,
            "consigneeDistrict": consignee.district if rng.random() < 0.6 else None,
            "note": rng.choice(("请工作日派送", "送货前请电话联系", "礼品订单，请勿放价格单")) if rng.random() < 0.1 else None,
        }
        transport = dict(shipment or self._transport(when)) if trade_mode == "9610" else None
        if transport and "from" not in transport:  # direct purchase ships from the origin or through Hong Kong
            transport["from"] = rng.choice((products[0].country, "110"))
        meta = {
            "tradeMode": trade_mode, "products": products, "insuredFee": insured, "payTransactionId": pay_id,
            "netWeight": net.quantize(Decimal("0.001")), "grossWeight": gross, "transport": transport,
            "site": (shipment or {}).get("site") or rng.choice(SITES),
        }
        return Doc("order", _finish("OrderHead", head, overrides), order_lines, meta)

    def payment(self, order: Doc, parties: Parties, **overrides: Any) -> Doc:
        rng, o = self.rng, order.head
        order_time = dt.datetime.strptime(o["appTime"], "%Y%m%d%H%M%S")
        pay_time = order_time - dt.timedelta(seconds=rng.randint(60, 1800))  # paid before the order was filed
        head = {
            "guid": self.guid(), "appType": "1", "appTime": self._tick().strftime("%Y%m%d%H%M%S"), "appStatus": "2",
            "payCode": o.get("payCode", parties.pay.code), "payName": o.get("payName", parties.pay.name),
            "payTransactionId": o.get("payTransactionId") or order.meta.get("payTransactionId")
            or pay_time.strftime("%Y%m%d") + self._digits(20),
            "orderNo": o["orderNo"], "ebpCode": o["ebpCode"], "ebpName": o["ebpName"],
            "payerIdType": "1", "payerIdNumber": o["buyerIdNumber"], "payerName": o["buyerName"],
            "telephone": o["buyerTelephone"] if rng.random() < 0.7 else None,
            "amountPaid": o["acturalPaid"], "currency": CNY, "payTime": pay_time.strftime("%Y%m%d%H%M%S"), "note": None,
        }
        return Doc("payment", _finish("PaymentHead", head, overrides), [], dict(order.meta))

    def waybill(self, order: Doc, parties: Parties, **overrides: Any) -> Doc:
        rng, o, meta = self.rng, order.head, order.meta
        transport = meta.get("transport")
        insured = meta.get("insuredFee", Decimal(0))
        goods_info = "；".join(f"{line['itemName']}*{line['qty']}" for line in order.lines)
        # Each firm has its own waybill prefix, as couriers do.
        prefix = "".join(chr(65 + b % 26) for b in hashlib.sha1(parties.logistics.code.encode()).digest()[:2])
        head = {
            "guid": self.guid(), "appType": "1", "appTime": self._tick().strftime("%Y%m%d%H%M%S"), "appStatus": "2",
            "logisticsCode": parties.logistics.code, "logisticsName": parties.logistics.name,
            "logisticsNo": f"{prefix}{self._digits(12)}", "billNo": transport["billNo"] if transport else None,
            "orderNo": o["orderNo"],
            "freight": o.get("freight") if rng.random() < 0.9 else None,
            "insuredFee": money(insured) if insured or rng.random() < 0.8 else None,
            "currency": CNY, "weight": str(meta.get("grossWeight", "1.000")), "packNo": "1",
            "goodsInfo": goods_info[:200] if rng.random() < 0.7 else None,
            "consignee": o["consignee"], "consigneeAddress": o["consigneeAddress"],
            "consigneeTelephone": o["consigneeTelephone"], "note": None,
        }
        return Doc("waybill", _finish("LogisticsHead", head, overrides), [], dict(meta))

    def waybill_status(self, waybill: Doc, parties: Parties, **overrides: Any) -> Doc:
        w = waybill.head
        signed_for = max(self.clock, dt.datetime.strptime(w["appTime"], "%Y%m%d%H%M%S")) + dt.timedelta(
            days=self.rng.randint(2, 6), seconds=self.rng.randrange(10 * 3600))
        self.clock = signed_for
        head = {
            "guid": self.guid(), "appType": "1", "appTime": self._tick(60, 3600).strftime("%Y%m%d%H%M%S"),
            "appStatus": "2",
            "logisticsCode": w["logisticsCode"], "logisticsName": w["logisticsName"], "logisticsNo": w["logisticsNo"],
            "logisticsStatus": "S", "logisticsTime": signed_for.strftime("%Y%m%d%H%M%S"),
            "note": "本人签收" if self.rng.random() < 0.3 else None,
        }
        return Doc("waybill_status", _finish("LogisticsStatus", head, overrides), [], dict(waybill.meta))

    def inventory(self, order: Doc, waybill: Doc, parties: Parties, *, trade_mode: str | None = None,
                  lines_overrides: Sequence[Mapping[str, Any]] | None = None, **overrides: Any) -> Doc:
        rng, o, w, meta = self.rng, order.head, waybill.head, order.meta
        trade_mode = trade_mode or meta.get("tradeMode") or "9610"
        direct = trade_mode == "9610"
        transport = (meta.get("transport") or self._transport(self.clock)) if direct else {}
        customs, port, _ = meta.get("site") or rng.choice(SITES)
        when = self._tick()
        bonded_area = parties.area if not direct else None
        inv_lines = []
        for i, line in enumerate(order.lines):
            p = self._product_for(order, i, line)
            qty = Decimal(line["qty"])
            item = {
                "gnum": line["gnum"], "itemRecordNo": f"{customs}{self._digits(8)}" if not direct else None,
                "itemNo": line.get("itemNo") if len(line.get("itemNo", "")) <= 20 and rng.random() < 0.8 else None,
                "itemName": line["itemName"] if rng.random() < 0.5 else None,
                "gcode": p.gcode, "gname": line["itemName"], "gmodel": line["gmodel"], "barCode": line.get("barCode"),
                "country": line["country"],
                "tradeCountry": (transport.get("from") or line["country"]) if rng.random() < 0.5 else None,
                "currency": CNY, "qty": line["qty"], "unit": line["unit"],
                "qty1": number(qty * Decimal(p.qty1)), "unit1": p.unit1,
                "qty2": number(qty * Decimal(p.qty2)) if p.unit2 else None, "unit2": p.unit2,
                "price": line["price"], "totalPrice": line["totalPrice"], "note": None,
            }
            item.update(_line_overrides(lines_overrides, i))
            inv_lines.append(_finish("InventoryList", item))
        gross = Decimal(w.get("weight") or meta.get("grossWeight") or "1")
        net = min(meta.get("netWeight") or gross * Decimal("0.85"), gross)
        head = {
            "guid": self.guid(), "appType": "1", "appTime": when.strftime("%Y%m%d%H%M%S"), "appStatus": "2",
            "orderNo": o["orderNo"], "ebpCode": o["ebpCode"], "ebpName": o["ebpName"],
            "ebcCode": o["ebcCode"], "ebcName": o["ebcName"],
            "logisticsNo": w["logisticsNo"], "logisticsCode": w["logisticsCode"], "logisticsName": w["logisticsName"],
            "copNo": f"QD{when:%Y%m%d}{self._digits(6)}" if rng.random() < 0.8 else None,
            "assureCode": parties.assure.code, "emsNo": f"T{customs}W{self._digits(6)}" if not direct else None,
            "ieFlag": "I", "declTime": when.strftime("%Y%m%d"), "customsCode": customs, "portCode": port,
            # arrival date: the flight date when known at declaration time, else left out as allowed
            "ieDate": transport["voyageNo"] if transport.get("trafMode") == "5" and rng.random() < 0.6 else None,
            "buyerIdType": "1", "buyerIdNumber": o["buyerIdNumber"], "buyerName": o["buyerName"],
            "buyerTelephone": o["buyerTelephone"], "consigneeAddress": o["consigneeAddress"],
            "agentCode": parties.agent.code, "agentName": parties.agent.name,
            "areaCode": bonded_area and bonded_area.code, "areaName": bonded_area and bonded_area.name,
            "tradeMode": trade_mode, "trafMode": transport.get("trafMode", "4"),  # bonded: road out of the zone
            "trafNo": transport.get("trafNo"), "voyageNo": transport.get("voyageNo"), "billNo": transport.get("billNo"),
            "loctNo": f"{customs}{self._digits(2)}" if direct and rng.random() < 0.15 else None,
            # where the goods were shipped from; bonded goods already sit in China (142)
            "country": (transport.get("from") or order.lines[0]["country"]) if direct else CNY,
            "freight": o.get("freight") or "0.00", "insuredFee": money(meta.get("insuredFee", Decimal(0))),
            "currency": CNY,
            "wrapType": rng.choice(("2", "2", "6")) if rng.random() < 0.6 else None, "packNo": "1",
            "grossWeight": str(gross), "netWeight": str(net), "note": None,
        }
        return Doc("inventory", _finish("InventoryHead", head, overrides), inv_lines, dict(meta, tradeMode=trade_mode))

    def invt_no(self, inventory: Doc) -> str:
        """A customs list number as customs would assign it: office + year + I + 9-digit serial."""
        return f"{inventory.head['customsCode']}{inventory.head['declTime'][:4]}I{self._digits(9)}"

    def _after_list(self, inventory: Doc, invt_no: str, reasons: Sequence[str]) -> dict[str, Any]:
        i = inventory.head
        when = self._tick(3600, 5 * 86400)
        return {
            "guid": self.guid(), "appType": "1", "appTime": when.strftime("%Y%m%d%H%M%S"), "appStatus": "2",
            "customsCode": i["customsCode"], "orderNo": i["orderNo"],
            **{k: i[k] for k in ("ebpCode", "ebpName", "ebcCode", "ebcName")},
            **{k: i[k] for k in ("logisticsNo", "logisticsCode", "logisticsName")},
            "copNo": f"CX{when:%Y%m%d}{self._digits(6)}" if self.rng.random() < 0.7 else None,
            "invtNo": invt_no,
            **{k: i[k] for k in ("buyerIdType", "buyerIdNumber", "buyerName", "buyerTelephone")},
            "agentCode": i["agentCode"], "agentName": i["agentName"],
            "reason": self.rng.choice(reasons), "note": None,
        }

    def cancel(self, inventory: Doc, parties: Parties, invt_no: str, **overrides: Any) -> Doc:
        head = self._after_list(inventory, invt_no, CANCEL_REASONS)
        return Doc("cancel", _finish("InvtCancel", head, overrides), [], dict(inventory.meta))

    def refund(self, inventory: Doc, parties: Parties, invt_no: str, *,
               lines_overrides: Sequence[Mapping[str, Any]] | None = None, **overrides: Any) -> Doc:
        head = self._after_list(inventory, invt_no, REFUND_REASONS)
        lines = []
        for i, line in enumerate(inventory.lines):
            item = {k: line[k] for k in ("gnum", "gcode", "gname", "qty", "unit")}
            item.update(_line_overrides(lines_overrides, i))
            lines.append(_finish("InvtRefundList", item))
        return Doc("refund", _finish("InvtRefundHead", head, overrides), lines, dict(inventory.meta))

    def delivery(self, waybills: Doc | Sequence[Doc], parties: Parties, **overrides: Any) -> Doc:
        waybills = [waybills] if isinstance(waybills, Doc) else list(waybills)
        if not waybills:
            raise ValueError("a delivery lists at least one waybill")
        first = waybills[0]
        when = self._tick()
        transport = first.meta.get("transport") or self._transport(when)
        customs, _, place = first.meta.get("site") or self.rng.choice(SITES)
        head = {
            "guid": self.guid(), "appType": "1", "appTime": when.strftime("%Y%m%d%H%M%S"), "appStatus": "2",
            "customsCode": customs, "copNo": f"RK{when:%Y%m%d}{self._digits(6)}" if self.rng.random() < 0.8 else None,
            "operatorCode": parties.operator.code, "operatorName": parties.operator.name, "ieFlag": "I",
            "trafMode": transport["trafMode"], "trafNo": transport["trafNo"], "voyageNo": transport["voyageNo"],
            "billNo": first.head.get("billNo") or transport["billNo"],
            "logisticsCode": first.head["logisticsCode"], "logisticsName": first.head["logisticsName"],
            "unloadLocation": f"{place}{self.rng.randint(1, 6)}号库区" if self.rng.random() < 0.6 else None, "note": None,
        }
        lines = [_finish("DeliveryList", {"gnum": n, "logisticsNo": w.head["logisticsNo"]})
                 for n, w in enumerate(waybills, 1)]
        return Doc("delivery", _finish("DeliveryHead", head, overrides), lines, dict(first.meta))

    def declaration(self, parties: Parties, *, lines: int = 1, trade_mode: str | None = None,
                    shipment: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Doc]:
        """Order, payment, waybill and list for one purchase, all agreeing (三单对碰, CEB.md §2).
        Overrides go to the order and flow from it into the others."""
        order = self.order(parties, lines=lines, trade_mode=trade_mode, shipment=shipment, **overrides)
        payment = self.payment(order, parties)
        waybill = self.waybill(order, parties)
        return {"order": order, "payment": payment, "waybill": waybill,
                "inventory": self.inventory(order, waybill, parties)}

    # -- serialisation --
    def message(self, code: str, docs: Doc | Sequence[Doc], *, sender: Party, guid: str | None = None,
                sign: bool | None = None, app_status: str | None = None, encoding: str = "UTF-8",
                subscribers: Sequence[Party] = (), identity: tuple[Any, Any] | None = None) -> bytes:
        """A complete ``CEB{code}Message`` holding ``docs``, transmitted by ``sender``.

        Signed by default where the schema requires it (621/623/625/711), with ``identity`` (key,
        certificate) or the test identity; ``sign=False`` leaves the signature out. ``app_status``
        sets appStatus on every document of this message (the documents are not changed).
        """
        mtype = FILED[code]
        docs = [docs] if isinstance(docs, Doc) else list(docs)
        if not 1 <= len(docs) <= mtype.max_docs:
            raise ValueError(f"CEB{code}Message holds 1 to {mtype.max_docs} documents, not {len(docs)}")
        if any(d.kind != mtype.kind for d in docs):
            raise ValueError(f"CEB{code}Message holds {mtype.kind} documents only")
        return render(mtype, docs, guid=guid or self.guid(), sender=sender, sign=mtype.signed if sign is None else sign,
                      app_status=app_status, encoding=encoding, subscribers=subscribers, identity=identity)


def render(mtype: MessageType, docs: Sequence[Doc], *, guid: str, sender: Party | None, sign: bool,
           app_status: str | None = None, encoding: str = "UTF-8", subscribers: Sequence[Party] = (),
           identity: tuple[Any, Any] | None = None, extend: etree._Element | None = None) -> bytes:
    """Serialise ``docs`` as ``mtype``'s root: business nodes, ``BaseTransfer`` (when there is a
    ``sender``), ``BaseSubscribe``, then ``ds:Signature`` and ``ExtendMessage`` in the direction's
    order (import: signature last; export: signature before ``ExtendMessage``, CEB.md §8.1)."""
    ceb = f"{{{CEB_NS}}}"
    root = etree.Element(ceb + mtype.root, nsmap={"ceb": CEB_NS})
    root.set("guid", guid)
    root.set("version", "1.0")
    for doc in docs:
        parent = etree.SubElement(root, ceb + mtype.wrapper) if mtype.wrapper else root
        head = dict(doc.head, appStatus=app_status) if app_status else doc.head
        _fill(etree.SubElement(parent, ceb + mtype.head), head)
        for line in doc.lines:
            _fill(etree.SubElement(parent, ceb + mtype.lines), line)
    if sender is not None:
        _fill(etree.SubElement(root, ceb + "BaseTransfer"),
              {"copCode": sender.code, "copName": sender.name, "dxpMode": "DXP", "dxpId": sender.dxp_id})
    for party in subscribers[:5]:
        _fill(etree.SubElement(root, ceb + "BaseSubscribe"),
              {"status": "ALL", "dxpMode": "DXP", "dxpAddress": party.dxp_id})
    if extend is not None:
        root.append(extend)
    etree.indent(root, space="  ")
    if sign:
        before = extend if extend is not None and mtype.direction == "export" else None
        signature.sign(root, *(identity or signature.test_signing_identity()), before=before)
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>\n'.encode(encoding)
    return declaration + etree.tostring(root, encoding=encoding, xml_declaration=False) + b"\n"


def _fill(element: etree._Element, values: Mapping[str, str]) -> None:
    ns = etree.QName(element).namespace
    for key, value in values.items():
        etree.SubElement(element, f"{{{ns}}}{key}").text = value


def wrap_dxp(message: bytes, *, sender_id: str, receiver_id: str = CUSTOMS_RECEIVER, msg_type: str | None = None,
             cop_msg_id: str | None = None, created: dt.datetime | None = None) -> bytes:
    """Wrap a business message in the terminal envelope ``DxpMsg`` (terminal.xsd), Data in Base64.

    Defaults are derived from the message so that the same message gives the same envelope:
    MsgType is the root element's name, CopMsgId a UUID hashed from the bytes, CreatTime the first
    appTime found in the message.
    """
    root = etree.fromstring(message)
    if created is None:
        app_time = root.findtext(f".//{{{CEB_NS}}}appTime")
        created = dt.datetime.strptime(app_time, "%Y%m%d%H%M%S") if app_time else dt.datetime(2024, 1, 1)
    d = f"{{{DXP_NS}}}"
    env = etree.Element(d + "DxpMsg", nsmap={None: DXP_NS})
    env.set("ver", "1.0")
    info = etree.SubElement(env, d + "TransInfo")
    etree.SubElement(info, d + "CopMsgId").text = cop_msg_id or str(
        uuid.UUID(bytes=hashlib.sha256(message).digest()[:16], version=4)).upper()
    etree.SubElement(info, d + "SenderId").text = sender_id
    etree.SubElement(etree.SubElement(info, d + "ReceiverIds"), d + "ReceiverId").text = receiver_id
    etree.SubElement(info, d + "CreatTime").text = created.strftime("%Y-%m-%dT%H:%M:%S")
    etree.SubElement(info, d + "MsgType").text = msg_type or etree.QName(root).localname
    etree.SubElement(env, d + "Data").text = base64.b64encode(message).decode("ascii")
    etree.indent(env, space="  ")
    body = etree.tostring(env, encoding="UTF-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"


__all__ = [
    "PRODUCTS",
    "BuilderCore",
    "Doc",
    "MessageBuilder",
    "Parties",
    "Party",
    "Product",
    "combined_rate",
    "money",
    "number",
    "render",
    "retail_tax",
    "wrap_dxp",
]
