"""Canonical JSON (RFC 8785), ledger entries as canonical bytes, and the guard that keeps personal data
out of them."""

from __future__ import annotations

import hashlib
import json

import pytest

from ledger import (
    PERSONAL_FIELDS,
    CanonicalJSONError,
    Entry,
    EntryError,
    PersonalDataError,
    assert_no_personal_data,
    canonical_json,
    parse_canonical,
)
from tests.fixtures.ledger import entry

# --- canonical JSON and entries ---------------------------------------------------------------------


def test_canonical_json_form():
    assert canonical_json({"b": 1, "a": [True, False, None, "x"], "c": {"z": -3, "y": ""}}) == (
        b'{"a":[true,false,null,"x"],"b":1,"c":{"y":"","z":-3}}'
    )
    # RFC 8785 §3.2.3: names sorted by UTF-16 code units (U+1F600 sorts before U+FB33)
    names = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    obj = {k: i for i, k in enumerate(names)}
    order = [k for k, _ in json.loads(canonical_json(obj), object_pairs_hook=list)]
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    # escapes as ECMAScript JSON.stringify; non-ASCII as UTF-8
    assert canonical_json("a\"\\/\b\f\n\r\t\x01\x1f\x7f é€😀") == '"a\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f é€😀"'.encode()
    assert canonical_json(2**53 - 1) == b"9007199254740991"


def test_canonical_json_is_stable():
    a = {"subject": {"orderNo": "A1", "ebpCode": "E1"}, "kind": "k", "n": 3}
    b = {"n": 3, "kind": "k", "subject": {"ebpCode": "E1", "orderNo": "A1"}}
    assert canonical_json(a) == canonical_json(b)
    assert canonical_json(parse_canonical(canonical_json(a))) == canonical_json(a)


@pytest.mark.parametrize("bad", [1.0, 0.5, float("nan"), float("inf"), {"x": 1.5}, [2.0], {1: "a"}, {("a",): 1}, 2**53, -(2**53), b"x", {1, 2}, "\ud800"])
def test_canonical_json_rejects(bad):
    with pytest.raises(CanonicalJSONError):
        canonical_json(bad)


@pytest.mark.parametrize("text", ['{"b":1,"a":2}', '{"a": 1}', '{"a":1.0}', '{"a":1e3}', '{"a":1,"a":1}', "[-0]", '"\\u0041"', "NaN", "{", b"\xff"])
def test_parse_canonical_rejects(text):
    with pytest.raises(CanonicalJSONError):
        parse_canonical(text)


DIGEST = hashlib.sha256(b"<CEB311Message/>").hexdigest()


def test_entry_bytes_and_round_trip():
    e = Entry("filing.accepted", "E0000001", {"orderNo": "A1", "ebpCode": "E1"}, DIGEST, "2024-05-01T08:30:00.123Z", {"msgType": "CEB311", "docs": 1})
    assert e.to_bytes() == (
        b'{"actor":"E0000001","digest":"' + DIGEST.encode() + b'","extra":{"docs":1,"msgType":"CEB311"},'
        b'"kind":"filing.accepted","subject":{"ebpCode":"E1","orderNo":"A1"},"time":"2024-05-01T08:30:00.123Z"}'
    )
    assert Entry.from_bytes(e.to_bytes()) == e
    assert b"extra" not in entry().to_bytes()  # an empty extra is omitted
    assert len(Entry("k", "a", {"x": 1}, DIGEST).time) == 24  # default time: now, with milliseconds


@pytest.mark.parametrize(
    "kw",
    [
        {"time": "2024-05-01T08:30:00Z"},
        {"time": "2024-05-01T08:30:00.123+08:00"},
        {"time": "2024-13-01T08:30:00.123Z"},
        {"digest": DIGEST.upper()},
        {"digest": "00"},
        {"kind": ""},
        {"actor": ""},
        {"subject": {}},
        {"subject": {"orderNo": 1.5}},
        {"subject": {"order": {"nested": "x"}}},
        {"extra": {"amount": 12.5}},
        {"extra": {"blob": "x" * 3000}},
    ],
)
def test_entry_validation(kw):
    with pytest.raises(EntryError):
        entry(**kw)


def test_entry_from_bytes_refuses_non_canonical():
    raw = entry().to_bytes()
    with pytest.raises(EntryError):
        Entry.from_bytes(raw.replace(b":", b": ", 1))
    with pytest.raises(EntryError):
        Entry.from_bytes(raw[:-1] + b',"more":1}')


LISTED = [
    "buyerName", "buyerIdNumber", "buyerTelephone", "consignee", "consigneeTelephone", "consigneeAddress",
    "payerName", "payerIdNumber", "telephone", "name", "phone", "address", "email", "idNumber",
]  # fmt: skip


@pytest.mark.parametrize("field", sorted(set(LISTED) | PERSONAL_FIELDS))
def test_personal_data_guard_refuses(field):
    assert field in PERSONAL_FIELDS
    for where in ("subject", "extra"):
        with pytest.raises(PersonalDataError, match=field):
            entry(**{where: {"orderNo": "A1", field: "x"}})
    with pytest.raises(PersonalDataError):
        entry(extra={"parties": [{"role": "buyer", field: "x"}]})  # at any depth
    with pytest.raises(PersonalDataError):
        entry(subject={"orderNo": "A1", field.upper(): "x"})  # any case
    with pytest.raises(PersonalDataError):
        assert_no_personal_data({"order": {field: "x"}})


def test_personal_data_guard_lets_business_keys_through():
    e = entry(subject={"ebpCode": "E1", "orderNo": "A1", "logisticsNo": "L1", "copNo": "C1"}, extra={"ebpName": "Shop Ltd", "status": 2})
    assert_no_personal_data(e)
    with pytest.raises(PersonalDataError):
        assert_no_personal_data({"buyer_name": "x"})  # separators ignored too
