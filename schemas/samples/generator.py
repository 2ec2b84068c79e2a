"""Writes a sample set (docs/testers.md): the enterprises, the messages in filing order, the
manifest of what swx and the regulators should make of each, and a README.

Deterministic: one seed drives the message builder (its clock, guids, people, goods) and the
generator's own choices, JSON is written with sorted keys, and nothing reads the wall clock or the
operating system's randomness, so the same arguments give a byte-identical set.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from schemas.builder import Doc, MessageBuilder, Parties, money, retail_tax

from .cast import (
    CARDIGAN,
    CLEANSER,
    HANDBAG,
    PROHIBITED,
    Buyer,
    Buyers,
    Cast,
    Firm,
    make_cast,
)
from .declarations import Decl, Filing
from .faults import BY_NAME, KIND_OF, KINDS, declaration_fault, edit, file_fault

SENDER_ROLE = {"311": "ebp", "411": "pay", "511": "logistics", "513": "logistics", "621": "agent", "711": "operator"}
CODE_OF = {kind: code for code, kind in KIND_OF.items()}
ANNUAL_PRIORS = 5  # released orders of one buyer before the one that crosses the yearly limit
ANNUAL_LIMIT = Decimal(26000)
TRANSACTION_LIMIT = Decimal(5000)
STATUS_SHARE, AMEND_SHARE, SHIPMENT_SHARE = 0.3, 0.04, 0.06
NOTES = ("买家留言：请尽快发货", "买家留言：工作日白天派送", "买家留言：外包装请勿标注商品名称", "更正：补充配送备注")


@dataclass(frozen=True)
class SampleSummary:
    """What ``generate`` wrote."""

    path: Path
    seed: int
    invalid_ratio: float
    declarations: int
    files: int
    enterprises: int
    faults: dict[str, int]  # fault kind -> declarations carrying it
    refused_files: int  # files the window is expected to refuse
    files_by_type: dict[str, int]
    states: dict[str, int]  # expected final state -> declarations
    direction: str = "import"
    summaries: int = 0  # export summary requests (701) whose result the manifest predicts

    @property
    def faulty(self) -> int:
        return sum(self.faults.values())

    def __str__(self) -> str:
        states = ", ".join(f"{n} {state}" for state, n in self.states.items())
        summaries = f", {self.summaries} summaries" if self.summaries else ""
        return (f"{self.path}: {self.declarations} declarations ({self.faulty} with a fault, {len(self.faults)} kinds; "
                f"expected {states}){summaries}, {self.files} files ({self.refused_files} to be refused), "
                f"{self.enterprises} enterprises; seed {self.seed}; see README.txt")


class Generator:
    def __init__(self, seed: int, declarations: int, invalid_ratio: float) -> None:
        self.seed, self.count, self.ratio = seed, declarations, invalid_ratio
        self.b = MessageBuilder(seed)
        self.rng = random.Random(f"swx samples {seed}")
        self.cast: Cast = make_cast(random.Random(f"swx samples cast {seed}"))
        self.buyers = Buyers(self.b, self.rng)
        self.decls: list[Decl] = []
        self.order_keys: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ the plan
    def plan(self) -> list[tuple[str, Any]]:
        """Units to generate, in order: ("clean", None), ("fault", kind), ("annual", None), ("shipment", n)."""
        rng = self.rng
        n_faults = min(self.count, round(self.count * self.ratio))
        kinds: list[str] = []
        while len(kinds) < n_faults:
            cycle = [k.name for k in KINDS]
            rng.shuffle(cycle)
            kinds += cycle
        units: list[tuple[str, Any]] = []
        clean = self.count - n_faults
        for kind in kinds[:n_faults]:
            if kind == "limit.annual":
                if clean >= ANNUAL_PRIORS:
                    clean -= ANNUAL_PRIORS
                    units.append(("annual", None))
                    continue
                kind = "limit.per-transaction"  # no room for the released orders the group needs
            units.append(("fault", kind))
        while clean > 0:
            if clean >= 2 and rng.random() < SHIPMENT_SHARE:
                n = min(clean, rng.randint(2, 4))
                units.append(("shipment", n))
                clean -= n
            else:
                units.append(("clean", None))
                clean -= 1
        rng.shuffle(units)
        return units

    def run(self) -> None:
        for unit, arg in self.plan():
            if unit == "clean":
                self.declaration()
            elif unit == "fault":
                self.declaration(arg)
            elif unit == "shipment":
                self.shipment(arg)
            else:
                self.annual_group()

    # ------------------------------------------------------------------ who and what
    def firms(self, seller: Firm | None = None) -> dict[str, Firm]:
        rng, c = self.rng, self.cast
        if seller is None:
            ebp = rng.choice(c.platforms)
            ebc = rng.choice(c.sellers_of[ebp.handle])
        else:
            ebp, ebc = rng.choice(c.platforms[1:]), seller
        agent = c.agent_of[ebc.handle]
        pay = c.pay_of[ebp.handle] if rng.random() < 0.75 else rng.choice(c.pays)
        return {"ebp": ebp, "ebc": ebc, "pay": pay, "logistics": rng.choice(c.logistics), "agent": agent,
                "assure": agent if rng.random() < 0.7 else ebc, "operator": rng.choice(c.operators),
                "area": rng.choice(c.areas)}

    @staticmethod
    def parties(f: dict[str, Firm]) -> Parties:
        return Parties(**{role: firm.party() for role, firm in f.items()})

    def buyer_fields(self, buyer: Buyer) -> dict[str, Any]:
        over = {"buyerName": buyer.name, "buyerTelephone": buyer.phone, "buyerIdNumber": buyer.id_number,
                "buyerRegNo": buyer.reg_no}
        if self.rng.random() < 0.85:  # else a gift: the builder's consignee, someone else
            over.update(consignee=buyer.name, consigneeTelephone=buyer.phone, consigneeAddress=buyer.address,
                        consigneeDistrict=buyer.district)
        return over

    def goods_order(self, parties: Parties, goods: list[tuple[Any, int, Decimal]], over: dict[str, Any]) -> Doc:
        """An order for exactly ``goods`` ((product, qty, unit price)), its tax and totals recomputed."""
        lines = [{"itemName": p.name, "gmodel": p.gmodel, "unit": p.unit, "country": p.country, "qty": qty,
                  "price": money(price), "itemDescribe": None, "barCode": None} for p, qty, price in goods]
        order = self.b.order(parties, lines=len(goods), lines_overrides=lines, trade_mode="9610",
                             freight=self.rng.choice(("0", "0", "8", "12", "15")), **over)
        products = [p for p, _, _ in goods]
        net = sum((Decimal(q) * Decimal(p.net_kg) for p, q, _ in goods), Decimal(0)).quantize(Decimal("0.001"))
        order.meta.update(products=products, insuredFee=Decimal(0), netWeight=net,
                          grossWeight=(net * Decimal("1.15") + Decimal("0.05")).quantize(Decimal("0.001")))
        h = order.head
        values = [Decimal(line["totalPrice"]) for line in order.lines]
        tax = retail_tax(list(zip(values, (p.gcode for p in products))), Decimal(h["freight"]), Decimal(0))
        goods_value = sum(values, Decimal(0))
        paid = goods_value + Decimal(h["freight"]) + tax - Decimal(h["discount"])
        return edit(order, {"goodsValue": money(goods_value), "taxTotal": money(tax), "acturalPaid": money(paid)})

    def new_id(self) -> str:
        return f"d{len(self.decls) + 1:05d}"

    # ------------------------------------------------------------------ declarations
    def declaration(self, fault: str | None = None, *, firms: dict[str, Firm] | None = None, buyer: Buyer | None = None,
                    goods: list[tuple[Any, int, Decimal]] | None = None, shipment: dict[str, Any] | None = None,
                    after: str | None = None, finish: bool = True) -> Decl:
        rng, b = self.rng, self.b
        fk = BY_NAME[fault] if fault else None
        if fault == "review.dishonest-seller":
            firms = self.firms(self.cast.dishonest_seller)
        firms = firms or self.firms()
        parties = self.parties(firms)
        buyer = buyer or self.buyers.pick()
        over = self.buyer_fields(buyer)
        if fault == "limit.per-transaction":
            goods = self.over_limit_goods()
        elif fault == "inspection.prohibited":
            p = rng.choice(PROHIBITED)
            goods = [(p, rng.randint(2, 5), Decimal(rng.randint(*p.price)))]
            if rng.random() < 0.5:
                goods.append((CLEANSER, 1, Decimal(rng.randint(*CLEANSER.price))))
        if goods:
            order = self.goods_order(parties, goods, over)
        else:
            needs = fk.needs if fk else {}
            lines = needs.get("lines") or rng.choices((1, 2, 3), (6, 3, 1))[0]
            order = b.order(parties, lines=lines, trade_mode=needs.get("trade_mode"), shipment=shipment, **over)
        key = (order.head["ebpCode"], order.head["orderNo"])
        if key in self.order_keys:
            raise RuntimeError(f"order number {key} drawn twice")  # 6 random digits per minute: never seen
        self.order_keys.add(key)
        payment = b.payment(order, parties)
        waybill = b.waybill(order, parties)
        docs = {"order": order, "payment": payment, "waybill": waybill, "inventory": b.inventory(order, waybill, parties)}
        d = Decl(self.new_id(), firms, parties, docs, buyer, fault, after)
        self.decls.append(d)
        if fk is not None and fk.level == "declaration":
            declaration_fault(self, d, fault)
        if finish:
            self.finish(d)
        return d

    def finish(self, d: Decl, extra: list[Filing] = ()) -> None:
        """The filings of ``d``: its documents in a plausible order, extras, and the fault's files."""
        rng, b, f = self.rng, self.b, d.firms
        # The list goes last: customs gives a list only SWX_MOCK_MATCH_WAIT to meet its documents, so a
        # list filed first would be released or refused (-621047) depending on the target's speed.
        kinds = ["order", "payment", "waybill", "inventory"]
        if rng.random() < 0.15:
            kinds = ["payment", "order", "waybill", "inventory"]  # the payment firm was quicker
        for kind in kinds:
            if kind == d.missing:
                continue
            code = CODE_OF[kind]
            fault = d.fault if kind == d.labelled else None
            d.filings.append(Filing(code, f[SENDER_ROLE[code]], [d.docs[kind]], fault, role="clean"))
        if d.fault is None:
            if rng.random() < AMEND_SHARE:  # the platform amends its order (appType 2, same key)
                order = d.docs["order"]
                change = edit(order, {"guid": b.guid(), "appType": "2", "note": rng.choice(NOTES)})
                at = next(i for i, x in enumerate(d.filings) if x.code == "311") + 1
                d.filings.insert(at, Filing("311", f["ebp"], [change], role="extra"))
            if rng.random() < STATUS_SHARE:  # signed for, a few days later
                clock = b.clock
                status = b.waybill_status(d.docs["waybill"], d.parties)
                b.clock = clock  # the status is filed days later; the next orders are not
                d.filings.append(Filing("513", f["logistics"], [status], role="extra"))
        d.filings += extra
        if d.fault is not None and BY_NAME[d.fault].level == "file":
            file_fault(self, d, d.fault)
        if d.charged:
            d.buyer.total += d.paid

    def over_limit_goods(self) -> list[tuple[Any, int, Decimal]]:
        rng = self.rng
        if rng.random() < 0.5:
            return [(HANDBAG, 1, Decimal(rng.randint(465, 598) * 10))]
        return [(HANDBAG, 1, Decimal(rng.randint(368, 398) * 10)), (CARDIGAN, 2, Decimal(rng.randint(90, 120) * 10 - 1))]

    def shipment(self, n: int) -> None:
        """``n`` direct-purchase orders on one flight or vessel, then the site operator's arrival note (711)."""
        s = self.b.shipment()
        base = self.firms()
        decls = []
        for i in range(n):
            firms = {**self.firms(), "logistics": base["logistics"], "operator": base["operator"]}
            decls.append(self.declaration(firms=firms, shipment=s, finish=False))
        for i, d in enumerate(decls):
            extra = []
            if i == n - 1:
                delivery = self.b.delivery([x.docs["waybill"] for x in decls], d.parties)
                extra = [Filing("711", base["operator"], [delivery], role="extra")]
            self.finish(d, extra)

    def annual_group(self) -> None:
        """One buyer's orders: ANNUAL_PRIORS released, then one that crosses CNY 26,000 in the year; each
        filed only after the one before has its final state."""
        rng = self.rng
        buyer = self.buyers.new()  # this buyer buys nowhere else in the set
        group: list[Decl] = []
        for i in range(ANNUAL_PRIORS + 1):
            crossing = i == ANNUAL_PRIORS
            price = Decimal(rng.randint(425, 445) * 10 if crossing else rng.randint(395, 445) * 10)
            d = self.declaration("limit.annual" if crossing else None, buyer=buyer, goods=[(HANDBAG, 1, price)],
                                 after=group[-1].id if group else None, finish=False)
            group.append(d)
        year_of = group[0].docs["inventory"].head["declTime"]
        for d in group:  # one calendar year for all of them, as customs counts
            if d.year != year_of[:4]:
                d.docs["inventory"] = edit(d.docs["inventory"], {"declTime": year_of})
        before = sum((d.paid for d in group[:-1]), Decimal(0))
        last = group[-1].paid
        if not (before < ANNUAL_LIMIT < before + last and last <= TRANSACTION_LIMIT
                and all(d.paid <= TRANSACTION_LIMIT for d in group)):
            raise AssertionError(f"annual group amounts out of range: {[str(d.paid) for d in group]}")
        for d in group:
            self.finish(d)

    # ------------------------------------------------------------------ output
    def serialise(self, f: Filing) -> bytes:
        b = self.b
        transmitter = (f.cop or f.sender).transmitter()
        body = b.message(f.code, f.docs, sender=transmitter, guid=f.guid, sign=f.sign)
        if f.raw is not None:
            body = f.raw(body)
        if f.envelope if f.envelope is not None else f.sender.envelope:
            message = body
            body = b.wrap_dxp(body, sender_id=f.env.get("sender_id", f.sender.dxp_id),
                              **{k: v for k, v in f.env.items() if k != "sender_id"})
            if f.env_raw is not None:
                body = f.env_raw(body, message)
        return body


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)


def command_line(out: Path, declarations: int, seed: int, invalid_ratio: float, direction: str = "import") -> str:
    line = (f"swx samples generate --out {out.name or '.'} --declarations {declarations} --seed {seed} "
            f"--invalid-ratio {invalid_ratio:g}")
    return line if direction == "import" else f"{line} --direction {direction}"


SET_FILES = ("enterprises.json", "expected.jsonl", "README.txt")
DIRECTIONS = ("import", "export", "both")


def generate(out: Path, *, declarations: int = 100, seed: int = 1, invalid_ratio: float = 0.1,
             overwrite: bool = False, direction: str = "import") -> SampleSummary:
    """Write a sample set of ``declarations`` declarations into ``out`` (docs/testers.md).

    About ``invalid_ratio`` of the declarations carry a fault, every kind in turn. ``out`` must be
    empty or missing, unless ``overwrite`` is set: then the files of an earlier set there go first.
    ``direction``: import (the retail import set), export (CEB.md §8: schemas/samples/export.py) or
    both (the import set's declarations, then as many export ones, in one set).
    """
    if declarations < 1:
        raise ValueError("a sample set holds at least one declaration")
    if not 0 <= invalid_ratio <= 1:
        raise ValueError("invalid_ratio is a share between 0 and 1")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction is one of {', '.join(DIRECTIONS)}")
    out = Path(out)
    messages = out / "messages"
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} is not empty; choose another folder or overwrite")
        for name in SET_FILES:
            (out / name).unlink(missing_ok=True)
        if messages.is_dir():
            for old in messages.glob("*.xml"):
                old.unlink()
    messages.mkdir(parents=True, exist_ok=True)

    lines: list[str] = []
    closing: list[str] = []
    seq = 0
    by_type: Counter[str] = Counter()
    refused = 0
    registrations: list[dict[str, Any]] = []
    faults: Counter[str] = Counter()
    states: Counter[str] = Counter()
    count = 0
    g = x = None
    if direction in ("import", "both"):
        g = Generator(seed, declarations, invalid_ratio)
        g.run()
        for d in g.decls:
            for f in d.filings:
                seq += 1
                name = f"messages/{seq:05d}-{d.id}-{f.code}.xml"
                (out / name).write_bytes(g.serialise(f))
                by_type[f.code] += 1
                refused += f.expect["outcome"] != "accepted"
                lines.append(_json({"type": "file", "file": name, "declaration": d.id, "messageType": f.code,
                                    "sender": f.sender.customs_code, "fault": f.fault, "expect": f.expect}))
        for d in g.decls:
            order = d.docs["order"].head
            closing.append(_json({"type": "declaration", "declaration": d.id, "ebpCode": order["ebpCode"],
                                  "orderNo": order["orderNo"], "fault": d.fault, "after": d.after, "expect": d.expect}))
        registrations += [f.registration() for f in g.cast.registered()]
        faults.update(d.fault for d in g.decls if d.fault)
        states.update(d.expect["state"] for d in g.decls)
        count += len(g.decls)
    if direction in ("export", "both"):
        from .export import ExportGenerator, generate_export

        x = ExportGenerator(seed, declarations, invalid_ratio)
        x_lines, x_closing, x_types, x_refused = generate_export(out, x, seq)
        lines += x_lines
        closing += x_closing
        seq += len(x_lines)
        by_type.update(x_types)
        refused += x_refused
        known = {r["code"] for r in registrations}
        registrations += [r for r in x.registrations() if r["code"] not in known]
        faults.update(d.fault for d in x.decls if d.fault)
        faults.update(s["fault"] for s in x.summaries if s["fault"])
        states.update(d.expect["state"] for d in x.decls)
        count += len(x.decls)
    (out / "expected.jsonl").write_text("\n".join(lines + closing) + "\n", encoding="utf-8")
    (out / "enterprises.json").write_text(
        json.dumps(registrations, ensure_ascii=False, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    summary = SampleSummary(
        path=out, seed=seed, invalid_ratio=invalid_ratio, declarations=count, files=seq,
        enterprises=len(registrations), faults=dict(sorted(faults.items())),
        refused_files=refused, files_by_type=dict(sorted(by_type.items())),
        states=dict(sorted(states.items())), direction=direction,
        summaries=len(x.summaries) if x is not None else 0,
    )
    (out / "README.txt").write_text(readme(summary, g, x), encoding="utf-8")
    return summary


def readme(s: SampleSummary, g: Generator | None, x: Any = None) -> str:
    stamps = []
    if g is not None:
        stamps += [min(d.docs["order"].head["appTime"] for d in g.decls),
                   max(f.docs[0].head["appTime"] for d in g.decls for f in d.filings if f.role != "fault")]
    if x is not None:
        times = [f.docs[0].head["appTime"] for f in x.ordered() if f.docs[0].head.get("appTime")]
        stamps += [min(times), max(times)]
    first, last = min(stamps), max(stamps)
    when = " to ".join(dt.datetime.strptime(t[:8], "%Y%m%d").strftime("%Y-%m-%d") for t in (first, last))
    out = [
        "swx sample set",
        "==============",
        "",
        f"Made by:       {command_line(s.path, s.declarations, s.seed, s.invalid_ratio, s.direction)}",
        f"Seed:          {s.seed}",
        f"Declarations:  {s.declarations} ({s.faulty} carry a fault, invalid ratio {s.invalid_ratio:g})",
        f"Files:         {s.files} ({s.refused_files} to be refused by the window), "
        + ", ".join(f"{n} × {t}" for t, n in s.files_by_type.items()),
        f"Enterprises:   {s.enterprises} (enterprises.json; register them all before filing)",
        f"Filing dates:  {when} (the builder's clock; nothing depends on today)",
        "Final states:  " + ", ".join(f"{n} {state}" for state, n in s.states.items()),
        "",
        "Format: docs/testers.md. Files are filed in seq order within a declaration; a declaration with",
        "`after` waits for that declaration's final state. Replay a set once per target: business keys",
        "and buyers' yearly totals stay there; use another --seed for the next run.",
        "",
        "Fault kinds (declarations carrying each, and the expected answer):",
    ]
    width = max((len(k.name) for k in KINDS), default=10)
    for k in KINDS:
        n = s.faults.get(k.name, 0)
        if n:
            out.append(f"  {k.name:<{width}}  {n:>4}  {k.outcome}  [{k.confirmed}]")
    missing = [k.name for k in KINDS if k.name not in s.faults]
    if missing:
        out += ["", f"Not in this set ({len(missing)}): " + ", ".join(missing)]
    out += [
        "",
        "[check]: decided by swx's steps 1-3 (parse, schema, rules: gateway.intake.validate.check);",
        "[registry]/[window]: decided by intake's database steps (the registry, business keys filed before);",
        "[regulator]: decided by the regulator stand-ins (mock customs matching and limits, inspection).",
        "match.missing-document is refused only after customs' match wait (SWX_MOCK_MATCH_WAIT, 30 s by default).",
        "Goods on the inspection table's restricted list (cosmetics, infant formula, supplements, honey) are",
        "held for inspection (500) and then released: their final state is released.",
        "Not in any set: cancellations (623) and returns (625), which must name the invtNo customs assigns",
        "when it accepts the list; it is not known when the set is generated.",
        "",
    ]
    if g is None:  # an export set: the import notes above do not apply
        out = out[: out.index("Fault kinds (declarations carrying each, and the expected answer):")]
    if x is not None:
        from .export import EXPORT_KINDS, export_readme

        out += export_readme(s, x, EXPORT_KINDS)
    return "\n".join(out)
