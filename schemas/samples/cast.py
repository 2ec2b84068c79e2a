"""The people and firms of a sample set: the enterprises (with the roles they are registered for),
the buyers, and the few goods the builder's catalogue lacks (prohibited ones).

Every firm has a 10-character customs code (the code it registers and transmits under, so the
code its API key belongs to) and an 18-character USCC; some firms write their USCC in the
business fields of their documents, as real firms do, which the window resolves to the same
registration.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from schemas.builder import (
    FIRM_CITIES,
    FIRM_WORDS,
    PRODUCTS,
    ROLE_SUFFIXES,
    MessageBuilder,
    Party,
    Product,
)
from schemas.identifiers import USCC_ALPHABET, make_customs_code, make_uscc

# Registering customs office of each city in FIRM_CITIES (4-digit customs district).
OFFICES = {"杭州": "2901", "宁波": "3101", "上海": "2201", "深圳": "5301", "广州": "5101", "郑州": "4601",
           "重庆": "8001", "厦门": "3701", "天津": "0201", "成都": "7901"}
MORE_WORDS = ["恒信", "华拓", "汇通", "锦程", "佳速", "宏远", "美嘉", "百川", "诚泰", "凯越",
              "德润", "天禧", "金桥", "盛世", "通达", "安捷", "博雅", "思源", "正和", "明泰",
              "昊天", "永康", "和信", "君澜", "一帆", "睿驰", "长风", "方圆", "众邦", "景程"]


def _product(gcode: str) -> Product:
    return next(p for p in PRODUCTS if p.gcode == gcode)


HANDBAG = _product("4202210090")  # leather handbag: plain goods, dear enough for the limits
CARDIGAN = _product("6110110000")  # knitted cardigan: plain goods
CLEANSER = _product("3401300000")  # facial cleanser: plain goods
# Goods the inspection table (mock_customs/tables/inspection.toml) prohibits in retail import.
PROHIBITED: tuple[Product, ...] = (
    Product("1209910000", "田园番茄种子", "田园牌|5g/袋|番茄|蔬菜种子", "007", "035", "0.005", None, None,
            "116", (15, 40), "0.010", "45"),
    Product("0601101000", "花语荷兰郁金香种球", "花语牌|10粒/袋|单头郁金香|混色", "007", "007", "10", None, None,
            "309", (39, 129), "0.250", "87"),
)


@dataclass(frozen=True)
class Firm:
    handle: str  # "ebp1", "agent2": stable within a set, for people reading the generator
    customs_code: str  # registered and transmitting code
    uscc: str
    name: str
    dxp_id: str
    roles: tuple[str, ...]
    office: str
    region: str
    rating: str = "general"
    uses_uscc: bool = False  # writes its USCC in business fields
    envelope: bool = False  # transmits in DxpMsg envelopes
    valid_to: str | None = None  # an expired registration (ISO date)
    registered: bool = True

    @property
    def code(self) -> str:
        return self.customs_code

    @property
    def named(self) -> str:
        """The code it writes in its documents' business fields."""
        return self.uscc if self.uses_uscc else self.customs_code

    def transmitter(self) -> Party:
        return Party(self.customs_code, self.name, self.dxp_id)

    def party(self) -> Party:
        return Party(self.named, self.name, self.dxp_id)

    def registration(self) -> dict[str, Any]:
        """Its ``POST /v1/enterprises`` body."""
        body: dict[str, Any] = {
            "code": self.customs_code, "uscc": self.uscc, "name": self.name, "roles": list(self.roles),
            "dxpId": self.dxp_id, "customsOffice": self.office, "regionCode": self.region, "creditRating": self.rating,
        }
        if self.valid_to:
            body.update(validFrom="2016-01-01", validTo=self.valid_to)
        return body


@dataclass
class Cast:
    platforms: list[Firm]
    sellers: list[Firm]  # honest, current sellers (the self-operated platform among them)
    pays: list[Firm]
    logistics: list[Firm]
    agents: list[Firm]
    operators: list[Firm]
    areas: list[Firm]
    dishonest_seller: Firm  # rated dishonest: its lists wait for manual review
    expired_seller: Firm  # registration expired: naming it is refused
    outsider: Firm  # a well-formed code nobody registered
    sellers_of: dict[str, list[Firm]] = field(default_factory=dict)  # platform handle -> sellers on it
    agent_of: dict[str, Firm] = field(default_factory=dict)  # seller handle -> its declaring agent
    pay_of: dict[str, Firm] = field(default_factory=dict)  # platform handle -> its usual payment firm

    def registered(self) -> list[Firm]:
        seen: dict[str, Firm] = {}
        for f in (*self.platforms, *self.sellers, *self.pays, *self.logistics, *self.agents, *self.operators,
                  *self.areas, self.dishonest_seller, self.expired_seller):
            seen.setdefault(f.customs_code, f)
        return list(seen.values())

    def without_role(self, role: str, avoid: Iterable[Firm] = ()) -> list[Firm]:
        taken = {f.customs_code for f in avoid}
        return [f for f in self.registered() if role not in f.roles and f.rating == "general" and not f.valid_to
                and f.customs_code not in taken]


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words = list(dict.fromkeys(FIRM_WORDS + MORE_WORDS))
        rng.shuffle(self.words)
        self.codes: set[str] = set()

    def firm(self, handle: str, role: str, roles: tuple[str, ...], **extra: Any) -> Firm:
        rng = self.rng
        city, region = rng.choice(FIRM_CITIES)
        office = OFFICES[city]
        while True:
            customs, uscc = make_customs_code(rng, office), make_uscc(rng, region)
            if customs not in self.codes and uscc not in self.codes:
                self.codes |= {customs, uscc}
                break
        word = self.words.pop()
        name = f"{city}{word}{rng.choice(ROLE_SUFFIXES[role])}"
        return Firm(handle, customs, uscc, name, f"DXPENT{rng.randrange(10**10):010d}", roles, office, region,
                    uses_uscc=rng.random() < 0.35, **extra)


def make_cast(rng: random.Random) -> Cast:
    """Three platforms (the first also sells on its own account), six sellers, three payment firms,
    three logistics firms (the first also declares as an agent), three agents, two site operators and
    two bonded-zone warehouses; plus a dishonest seller, a seller whose registration has expired and an
    unregistered firm, each used only where a fault needs it."""
    n = _Names(rng)
    platforms = [n.firm("ebp1", "ebp", ("ebp", "ebc")), n.firm("ebp2", "ebp", ("ebp",)),
                 n.firm("ebp3", "ebp", ("ebp",), envelope=True)]
    pays = [n.firm(f"pay{i}", "pay", ("pay",), envelope=i == 1) for i in (1, 2, 3)]
    logistics = [n.firm("log1", "logistics", ("logistics", "agent", "assure"), envelope=True),
                 n.firm("log2", "logistics", ("logistics",)), n.firm("log3", "logistics", ("logistics",))]
    agents = [n.firm(f"agent{i}", "agent", ("agent", "assure")) for i in (1, 2, 3)] + [logistics[0]]
    sellers = [n.firm(f"ebc{i}", "ebc", ("ebc",)) for i in range(1, 7)]
    operators = [n.firm(f"op{i}", "operator", ("operator",)) for i in (1, 2)]
    areas = [n.firm(f"area{i}", "area", ("area",)) for i in (1, 2)]
    dishonest = n.firm("ebc-dishonest", "ebc", ("ebc",), rating="dishonest")
    expired = n.firm("ebc-expired", "ebc", ("ebc",), valid_to="2022-12-31")
    outsider = n.firm("outsider", "ebc", ("ebc",), registered=False)
    cast = Cast(platforms, [platforms[0], *sellers], pays, logistics, agents, operators, areas, dishonest, expired, outsider)
    cast.sellers_of = {
        "ebp1": [platforms[0], *sellers[:2]],  # self-operated, plus two marketplace sellers
        "ebp2": sellers[1:5],
        "ebp3": [sellers[0], *sellers[4:]],
    }
    for i, s in enumerate([platforms[0], *sellers, dishonest, expired]):
        cast.agent_of[s.handle] = agents[i % len(agents)]
    cast.pay_of = {p.handle: pays[i] for i, p in enumerate(platforms)}
    return cast


# --- buyers -----------------------------------------------------------------------------------


@dataclass
class Buyer:
    name: str
    phone: str
    id_number: str
    address: str
    district: str
    reg_no: str  # the buyer's account at the platforms (kept the same at all of them, for simplicity)
    total: Decimal = Decimal(0)  # what customs will have charged this buyer, all years


class Buyers:
    """A pool of buyers in which some come back often: a new buyer about half the time, else a
    returning one, the earlier ones more likely. A buyer whose purchases come near the yearly limit
    is not chosen again (each order stays under CNY 5,000, so the total stays under 26,000)."""

    CAP = Decimal(20500)

    def __init__(self, builder: MessageBuilder, rng: random.Random) -> None:
        self.builder, self.rng = builder, rng
        self.pool: list[Buyer] = []

    def new(self) -> Buyer:
        p = self.builder._person()
        return Buyer(p.name, p.phone, p.id_number, p.address, p.district, f"U{self.rng.randrange(10**10):010d}")

    def pick(self) -> Buyer:
        eligible = [b for b in self.pool if b.total < self.CAP]
        if not eligible or self.rng.random() < 0.5:
            buyer = self.new()
            self.pool.append(buyer)
            return buyer
        weights = [1 / (i + 1) for i in range(len(eligible))]
        return self.rng.choices(eligible, weights)[0]


def bad_uscc(uscc: str) -> str:
    """``uscc`` with a wrong check character (a typo in its last place)."""
    return uscc[:17] + next(c for c in reversed(USCC_ALPHABET) if c != uscc[17])
