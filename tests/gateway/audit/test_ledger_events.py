"""The ledger in the running window: every event kind written, no personal data, the published
checkpoint, entries and proofs, access rules, the trace of a declaration, and concurrent appends."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from gateway.audit.events import digest_of, sha256_hex
from ledger import leaf_hash, verify_checkpoint
from ledger.verify import check_bundle, verify_consistency_proof, verify_inclusion_proof
from schemas.builder import Doc, Parties
from tests.fixtures.parties import party_of
from tests.fixtures.server import eventually


def all_entries(swx, auth) -> list[dict]:
    size = int(swx.http.get("/v1/ledger/checkpoint", headers=auth).text.split("\n")[1])
    out = []
    for start in range(0, size, 1000):
        r = swx.http.get("/v1/ledger/entries", params={"start": start, "end": min(start + 1000, size)}, headers=auth)
        assert r.status_code == 200, r.text
        out += r.json()["entries"]
    return out


def entries_of(swx, auth, **match) -> list[dict]:
    """Entries (visible to ``auth``) whose subject has every ``match`` value."""
    return [e for e in all_entries(swx, auth) if all(e["entry"]["subject"].get(k) == v for k, v in match.items())]


def verifier_key(swx, auth) -> str:
    return swx.http.get("/v1/ledger/key", headers=auth).text.strip()


@pytest.fixture(scope="module")
def cast(swx):
    """Six firms that play the parts of one declaration, each with its own key."""
    firms = {
        "ebp": swx.register(["ebp"]), "ebc": swx.register(["ebc"]), "pay": swx.register(["pay"]),
        "logistics": swx.register(["logistics"]), "agent": swx.register(["agent", "assure"]),
        "operator": swx.register(["operator"]),
    }
    parties = Parties(
        ebp=party_of(firms["ebp"]), ebc=party_of(firms["ebc"]), pay=party_of(firms["pay"]),
        logistics=party_of(firms["logistics"]), agent=party_of(firms["agent"]), assure=party_of(firms["agent"]),
        operator=party_of(firms["operator"]),
    )
    return firms, parties


def changed(doc: Doc, **head) -> Doc:
    return replace(doc, head={**doc.head, **head})


@pytest.fixture(scope="module")
def declaration(swx, cast):
    """One declaration filed by its own firms: order saved then declared, payment, waybill, waybill
    status, list, and one refused duplicate order."""
    from schemas.builder import MessageBuilder

    firms, parties = cast
    b = MessageBuilder(seed=4242)
    decl = b.declaration(parties, lines=2)
    steps = [
        ("ebp", b.message("311", decl["order"], sender=parties.ebp, app_status="1"), 201),
        ("ebp", b.message("311", changed(decl["order"], appType="2"), sender=parties.ebp), 201),
        ("pay", b.message("411", decl["payment"], sender=parties.pay), 201),
        ("logistics", b.message("511", decl["waybill"], sender=parties.logistics), 201),
        ("logistics", b.message("513", b.waybill_status(decl["waybill"], parties), sender=parties.logistics), 201),
        ("agent", b.message("621", decl["inventory"], sender=parties.agent), 201),
        ("ebp", b.message("311", decl["order"], sender=parties.ebp), 422),  # appType 1 again: a duplicate
    ]
    bodies = []
    for who, body, status in steps:
        r = swx.file(firms[who], body)
        assert r.status_code == status, r.text
        bodies.append(body)
    return decl, bodies


def trace(swx, auth, decl) -> dict:
    order = decl["order"].head
    r = swx.http.get("/v1/trace", params={"ebpCode": order["ebpCode"], "orderNo": order["orderNo"]}, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def test_trace_tells_where_a_declaration_came_from(swx, cast, declaration):
    firms, _ = cast
    decl, bodies = declaration
    codes = {f.code for f in firms.values()}

    def by_firms(t: dict) -> list[dict]:
        """What the firms did (regulators' verdicts and deliveries come in the trace too)."""
        return [e for e in t["entries"] if e["entry"]["kind"].startswith(("filing.", "document.")) and e["entry"]["actor"] in codes]

    got = eventually(lambda: (t := trace(swx, swx.operator, decl)) and len(by_firms(t)) == 8 and t)
    filings = [(e["entry"]["kind"], e["entry"]["subject"].get("doc")) for e in by_firms(got)]
    assert filings == [
        ("filing.accepted", "order"), ("document.state", "order"), ("filing.accepted", "order"),
        ("filing.accepted", "payment"), ("filing.accepted", "waybill"), ("filing.accepted", "waybill_status"),
        ("filing.accepted", "inventory"), ("filing.rejected", "order"),
    ]
    # the registrations every party relied on, in force before the declaration
    registered = {e["entry"]["subject"]["enterprise"] for e in got["entries"] if e["entry"]["kind"] == "registration.version.created"}
    assert registered == {f.code for role, f in firms.items() if role != "operator"}  # the arrival operator is not named yet
    assert {e["entry"]["subject"]["enterprise"] for e in got["entries"] if e["entry"]["kind"] == "registration.shared"} == registered
    # in time order, each entry's digest binds what was filed, and each proof checks against the signed checkpoint
    times = [e["entry"]["time"] for e in got["entries"]]
    assert times == sorted(times)
    about_filings = {e["entry"]["digest"] for e in by_firms(got)}
    assert about_filings == {sha256_hex(b) for b in bodies}
    cp = verify_checkpoint(got["checkpoint"], verifier_key(swx, swx.operator))
    assert cp.size == got["treeSize"] and base64.b64encode(cp.root).decode() == got["rootHash"]
    for e in got["entries"]:
        assert base64.b64decode(e["leafHash"]) == leaf_hash(e["entryText"].encode())
        assert json.loads(e["entryText"]) == e["entry"]
        assert verify_inclusion_proof(index=e["index"], size=cp.size, proof=e["proof"], root=cp.root, entry=e["entryText"])
    state = next(e for e in by_firms(got) if e["entry"]["kind"] == "document.state")["entry"]
    assert state["extra"]["from"] == "1" and state["extra"]["to"] == "2" and state["actor"] == firms["ebp"].code
    rejected = next(e for e in got["entries"] if e["entry"]["kind"] == "filing.rejected")["entry"]
    assert rejected["extra"]["codes"] == ["-301010"] and rejected["extra"]["httpStatus"] == 422


def test_a_firm_traces_only_what_names_it(swx, cast, declaration):
    firms, _ = cast
    decl, _ = declaration
    eventually(lambda: len(trace(swx, swx.operator, decl)["entries"]) >= 8)
    everything = trace(swx, swx.operator, decl)["entries"]
    mine = trace(swx, firms["ebp"].auth, decl)["entries"]
    docs = {e["entry"]["subject"].get("doc") for e in mine}
    assert {"order", "payment", "inventory"} <= docs and "waybill" not in docs and "waybill_status" not in docs
    assert {e["entry"]["subject"].get("enterprise") for e in mine} <= {None, firms["ebp"].code}
    assert len(mine) < len(everything)
    logistics = trace(swx, firms["logistics"].auth, decl)["entries"]
    assert {"waybill", "waybill_status", "inventory"} <= {e["entry"]["subject"].get("doc") for e in logistics}
    outsider = swx.register(["ebp"])
    assert trace(swx, outsider.auth, decl)["entries"] == []


def test_entries_a_firm_reads_are_its_own(swx, cast, declaration):
    firms, _ = cast
    eventually(lambda: len(trace(swx, swx.operator, declaration[0])["entries"]) >= 8)
    ebp = firms["ebp"]
    mine = all_entries(swx, ebp.auth)
    # its own filings and registration, and what happened to documents naming it (routes, deliveries,
    # verdicts) -- but nothing about documents that do not name it, like the logistics firm's status update
    assert any(e["entry"]["actor"] == ebp.code for e in mine)
    assert all(e["entry"]["subject"].get("doc") not in ("waybill", "waybill_status") for e in mine)
    everything = all_entries(swx, swx.operator)
    assert {e["index"] for e in mine} < {e["index"] for e in everything}
    regulator = swx.http.post("/v1/regulators/tax/keys", headers=swx.operator).json()["apiKey"]
    assert len(all_entries(swx, {"Authorization": f"Bearer {regulator}"})) >= len(everything)


def test_registration_events(swx):
    firm = swx.register(["ebc"])
    patch = swx.http.patch(f"/v1/enterprises/{firm.code}", json={"name": firm.name + "二"}, headers=firm.auth)
    assert patch.status_code in (200, 202), patch.text
    version = patch.json()["pending"]["version"]
    r = swx.http.post(f"/v1/enterprises/{firm.code}/versions/{version}/approve", json={"note": "ok"}, headers=swx.operator)
    assert r.status_code == 200, r.text
    patch = swx.http.patch(f"/v1/enterprises/{firm.code}", json={"roles": ["ebc", "ebp"]}, headers=firm.auth)
    refused = patch.json()["pending"]["version"]
    r = swx.http.post(f"/v1/enterprises/{firm.code}/versions/{refused}/reject", json={"note": "no"}, headers=swx.operator)
    assert r.status_code == 200, r.text
    assert swx.http.post(f"/v1/enterprises/{firm.code}/suspend", json={}, headers=swx.operator).status_code == 200
    customs = {"Authorization": "Bearer " + swx.http.post("/v1/regulators/customs/keys", headers=swx.operator).json()["apiKey"]}
    view = swx.http.get(f"/v1/registry/enterprises/{firm.code}", headers=customs)
    assert view.status_code == 200, view.text

    def logged():
        got = entries_of(swx, firm.auth, enterprise=firm.code)
        return got if any(e["entry"]["kind"] == "registration.read" for e in got) else None

    got = [e["entry"] for e in eventually(logged)]
    kinds = [(e["kind"], e["subject"]["version"]) for e in got]
    assert ("registration.version.created", 1) in kinds and ("registration.shared", 1) in kinds
    assert ("registration.version.created", version) in kinds and ("registration.version.approved", version) in kinds
    assert ("registration.shared", version) in kinds
    assert ("registration.version.created", refused) in kinds and ("registration.version.rejected", refused) in kinds
    assert ("registration.shared", refused) not in kinds
    suspended = next(e for e in got if e["kind"] == "registration.version.created" and e["extra"]["kind"] == "suspended")
    assert suspended["actor"] == "operator" and suspended["extra"]["status"] == "suspended"
    created = next(e for e in got if e["kind"] == "registration.version.created" and e["subject"]["version"] == version)
    assert created["actor"] == firm.code and created["extra"]["state"] == "pending" and created["extra"]["changedFields"] == ["name"]
    shared = next(e for e in got if e["kind"] == "registration.shared")
    assert shared["extra"]["regulators"] == ["customs", "fx", "inspection", "tax"]
    read = next(e for e in got if e["kind"] == "registration.read")
    # the digest is of exactly what the regulator received
    assert read["actor"] == "customs" and read["digest"] == digest_of(view.json()) and read["extra"]["via"] == "read"


def test_rejected_garbage_is_logged_for_its_sender(swx):
    firm = swx.register(["ebp"])
    body = b"<not-xml"
    assert swx.file(firm, body).status_code == 400
    got = eventually(lambda: [e for e in all_entries(swx, firm.auth) if e["entry"]["kind"] == "filing.rejected"])
    (entry,) = [e["entry"] for e in got]
    assert entry["subject"] == {"doc": "message", "messageType": None, "guid": None}
    assert entry["digest"] == sha256_hex(body) and entry["actor"] == firm.code and entry["extra"]["httpStatus"] == 400


PERSONAL_HEAD_FIELDS = ("buyerName", "buyerIdNumber", "buyerTelephone", "consignee", "consigneeTelephone",
                        "consigneeAddress", "payerName", "payerIdNumber", "telephone", "receiverName", "receiverAddress")


def test_no_personal_data_enters_the_ledger(swx, builder, filer):
    parties = builder.parties()
    decl = builder.declaration(parties, lines=2)
    personal = set()
    for code, doc in (("311", decl["order"]), ("411", decl["payment"]), ("511", decl["waybill"]), ("621", decl["inventory"])):
        personal |= {v for k, v in doc.head.items() if k in PERSONAL_HEAD_FIELDS and len(v) >= 2}
        assert swx.file(filer, builder.message(code, doc, sender=party_of(filer))).status_code == 201
    contact = {"name": "王小明", "phone": "13912345678", "email": "wang.xiaoming@example.cn"}
    firm = swx.register(["ebc"])
    r = swx.http.patch(f"/v1/enterprises/{firm.code}", json={"contact": contact}, headers=swx.operator)
    assert r.status_code == 200, r.text
    personal |= set(contact.values()) | {firm.name}
    assert len(personal) >= 8
    order = decl["order"].head
    eventually(lambda: len(trace(swx, swx.operator, decl)["entries"]) >= 4)
    eventually(lambda: len(entries_of(swx, firm.auth, enterprise=firm.code)) >= 4)
    text = "\n".join(e["entryText"] for e in all_entries(swx, swx.operator))
    assert order["orderNo"] in text  # the business keys are there ...
    leaked = [v for v in personal if v in text]
    assert leaked == []  # ... the people are not


def test_checkpoint_key_and_proofs(swx, filer, builder, tmp_path):
    assert swx.file(filer, builder.message("311", builder.order(builder.parties()), sender=party_of(filer))).status_code == 201
    auth = filer.auth
    key = verifier_key(swx, auth)
    first = verify_checkpoint(swx.http.get("/v1/ledger/checkpoint", headers=auth).text, key)
    assert first.size > 0
    for _ in range(3):
        assert swx.file(filer, builder.message("311", builder.order(builder.parties()), sender=party_of(filer))).status_code == 201
    latest = eventually(lambda: (cp := verify_checkpoint(swx.http.get("/v1/ledger/checkpoint", headers=auth).text, key))
                        .size >= first.size + 3 and cp)
    # inclusion: the default answer is a bundle the offline checker accepts, entry text included for one's own
    mine = [e for e in entries_of(swx, auth) if filer.code in e["entryText"]][-1]
    bundle = swx.http.get("/v1/ledger/proof/inclusion", params={"index": mine["index"]}, headers=auth).json()
    assert bundle["entry"] == mine["entryText"] and bundle["size"] >= latest.size
    assert check_bundle(bundle, trusted_key=key), str(check_bundle(bundle, trusted_key=key))
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    cli = subprocess.run([sys.executable, "-m", "ledger.verify", str(path), "--key", key], capture_output=True, text=True, check=False)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    tampered = {**bundle, "entry": bundle["entry"].replace(filer.code, "0" * len(filer.code))}
    assert not check_bundle(tampered, trusted_key=key)
    # by leaf hash, and against an older size
    by_hash = swx.http.get("/v1/ledger/proof/inclusion", params={"hash": mine["leafHash"]}, headers=auth).json()
    assert by_hash["index"] == mine["index"]
    old = swx.http.get("/v1/ledger/proof/inclusion", params={"index": 0, "size": first.size}, headers=auth).json()
    assert verify_inclusion_proof(index=0, size=first.size, proof=old["proof"], root=first.root, leaf_hash=old["leafHash"])
    assert old["checkpoint"] == first.note
    # a firm gets the proof of someone else's entry, but not the entry
    other = next(e for e in all_entries(swx, swx.operator) if filer.code not in e["entryText"])
    theirs = swx.http.get("/v1/ledger/proof/inclusion", params={"index": other["index"]}, headers=auth).json()
    assert "entry" not in theirs and theirs["leafHash"] == other["leafHash"]
    # consistency: the older checkpoint is a prefix of the latest
    cons = swx.http.get("/v1/ledger/proof/consistency", params={"first": first.size}, headers=auth).json()
    now = verify_checkpoint(cons["checkpoint"], key)
    assert cons["firstCheckpoint"] == first.note and cons["second"] == now.size
    assert verify_consistency_proof(first=first.size, second=now.size, proof=cons["proof"], first_root=first.root, second_root=now.root)
    assert check_bundle(cons, trusted_key=key)
    forged = {**cons, "firstRoot": base64.b64encode(bytes(32)).decode()}
    assert not check_bundle(forged, trusted_key=key)


@pytest.mark.parametrize(("params", "field"), [
    ({"index": 10**9}, "index"), ({"index": 0, "size": 10**9}, "size"), ({}, "index"), ({"hash": "!!"}, "hash"),
])
def test_bad_proof_requests_name_the_parameter(swx, filer, params, field):
    r = swx.http.get("/v1/ledger/proof/inclusion", params=params, headers=filer.auth)
    assert r.status_code == 400 and r.json()["field"] == field, r.text


def test_bad_consistency_requests(swx, filer):
    r = swx.http.get("/v1/ledger/proof/consistency", params={"first": 10**9}, headers=filer.auth)
    assert r.status_code == 400 and r.json()["field"] in ("first", "second")
    r = swx.http.get("/v1/ledger/proof/consistency", params={"first": 2, "second": 1}, headers=filer.auth)
    assert r.status_code == 400 and r.json()["field"] == "first"


@pytest.mark.parametrize("path", ["/v1/ledger/checkpoint", "/v1/ledger/key", "/v1/ledger/entries", "/v1/trace?ebpCode=A&orderNo=1"])
def test_ledger_needs_a_caller(swx, path):
    assert swx.http.get(path).status_code == 401


def test_concurrent_filings_leave_a_consistent_log(swx, builder, filer, settings):
    bodies = [builder.message("311", builder.order(builder.parties()), sender=party_of(filer)) for _ in range(60)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda b: swx.file(filer, b).status_code, bodies))
    assert statuses == [201] * 60
    digests = {sha256_hex(b) for b in bodies}

    def all_in():
        got = [e for e in all_entries(swx, swx.operator)
               if e["entry"]["digest"] in digests and e["entry"]["kind"] == "filing.accepted"]
        return got if len(got) == 60 else None

    got = eventually(all_in)
    assert len({e["index"] for e in got}) == 60
    everything = all_entries(swx, swx.operator)
    assert [e["index"] for e in everything] == list(range(len(everything)))  # gap-free
    env = {**os.environ, "SWX_DATABASE_URL": settings.database_url, "SWX_LEDGER_KEY_PATH": str(settings.ledger_key_path),
           "SWX_LEDGER_ORIGIN": settings.ledger_origin}
    verify = subprocess.run([sys.executable, "-m", "gateway.cli", "ledger", "verify"], capture_output=True, text=True, env=env, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_events_noted_but_not_flushed_refuse_to_commit(tmp_path):
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from gateway import trail
    from gateway.audit import events

    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    sessions = async_sessionmaker(engine)
    with pytest.raises(RuntimeError, match="not flushed"):
        async with sessions() as session, session.begin():
            trail.note(session, events.registration_decided("1234567890", 2, record={"a": 1}, approved=True))
    await engine.dispose()
