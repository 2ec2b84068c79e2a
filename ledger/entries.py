"""Ledger entries: what one audit event looks like, and the guard that keeps personal data out.

An entry records *that* something happened to a business object, never the personal data in it:
``subject`` holds business keys (``{"ebpCode": ..., "orderNo": ...}``) and ``digest`` the SHA-256 of
the content the event is about (a message, a receipt), so the content can be proven later without
the ledger holding it. Its leaf in the Merkle tree is the hash of its canonical JSON bytes.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from .canonical import CanonicalJSONError, canonical_json, parse_canonical

MAX_ENTRY_BYTES = 8192  # canonical size of one entry
MAX_EXTRA_BYTES = 2048  # canonical size of its ``extra`` object

# Field names that carry personal data (CEB vocabulary plus generic names). Matching ignores case,
# "_", "-", "." and spaces, and applies at every depth of ``subject`` and ``extra``.
PERSONAL_FIELDS: frozenset[str] = frozenset(
    {
        "buyerName", "buyerIdNumber", "buyerTelephone", "buyerRegNo",
        "consignee", "consigneeTelephone", "consigneeAddress", "consigneeDistrict", "consigneeDitrict",
        "payerName", "payerIdNumber", "payerTelephone",
        "receiverName", "receiverTelephone", "receiverAddress",
        "telephone", "tel", "phone", "phoneNumber", "mobile", "mobilePhone", "fax",
        "name", "fullName", "firstName", "lastName", "surname", "givenName", "personName",
        "address", "street", "postalAddress", "homeAddress",
        "email", "emailAddress", "mail",
        "idNumber", "idNo", "idCard", "idCardNo", "identityNumber", "passport", "passportNo", "passportNumber",
        "birthday", "birthDate", "dateOfBirth",
    }
)  # fmt: skip


@functools.lru_cache(maxsize=4096)  # the same few field names come back in every entry
def _norm(name: str) -> str:
    return re.sub(r"[\s_.\-]", "", name).casefold()


_PERSONAL_NORMALIZED = frozenset(_norm(f) for f in PERSONAL_FIELDS)

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}")
_FIELDS = ("kind", "time", "actor", "subject", "digest")


class PersonalDataError(ValueError):
    """An entry names a field that carries personal data."""


class EntryError(ValueError):
    """An entry is malformed."""


def utc_now() -> str:
    """The current time as RFC 3339 UTC with milliseconds, e.g. ``2024-05-01T08:30:00.123Z``."""
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise EntryError("ledger times must be timezone-aware")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _any_personal(value: Any) -> bool:
    """Whether ``_walk_names`` would find anything (without building a path per field)."""
    if isinstance(value, Mapping):
        return any((isinstance(k, str) and _norm(k) in _PERSONAL_NORMALIZED) or _any_personal(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_any_personal(item) for item in value)
    return False


def _walk_names(value: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            where = f"{path}.{k}"
            if isinstance(k, str) and _norm(k) in _PERSONAL_NORMALIZED:
                found.append(where)
            found.extend(_walk_names(v, where))
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            found.extend(_walk_names(item, f"{path}[{n}]"))
    return found


def assert_no_personal_data(entry: Entry | Mapping[str, Any]) -> None:
    """Refuse an entry (or a plain mapping, e.g. a would-be ``subject``) naming a personal-data field.

    Checks ``subject`` and ``extra`` of an :class:`Entry`, or every key of a mapping, at any depth.
    """
    if isinstance(entry, Entry):
        if not (_any_personal(entry.subject) or _any_personal(entry.extra)):
            return
        found = _walk_names(dict(entry.subject), "subject") + _walk_names(dict(entry.extra), "extra")
    else:
        if not _any_personal(entry):
            return
        found = _walk_names(entry, "$")
    if found:
        raise PersonalDataError(
            "personal data must not enter the ledger; refused field(s): " + ", ".join(found)
        )


@dataclass(frozen=True)
class Entry:
    """One audit event. Validated on construction; ``to_bytes()`` is what the Merkle leaf hashes."""

    kind: str  # e.g. "filing.accepted"
    actor: str  # who caused it: an enterprise code, "operator", "system", ...
    subject: Mapping[str, Any]  # business keys only: str / int / bool / None values
    digest: str  # lower-case hex SHA-256 of the content the event is about
    time: str = field(default_factory=utc_now)  # RFC 3339 UTC with milliseconds
    extra: Mapping[str, Any] = field(default_factory=dict)  # optional small fields
    _bytes: bytes = field(init=False, repr=False, compare=False, default=b"")

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not _KIND.fullmatch(self.kind):
            raise EntryError(f"bad kind {self.kind!r}")
        if not isinstance(self.actor, str) or not 0 < len(self.actor) <= 128:
            raise EntryError("actor must be a non-empty string of at most 128 characters")
        if not isinstance(self.time, str) or not _TIME.fullmatch(self.time):
            raise EntryError(f"time must be RFC 3339 UTC with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ), got {self.time!r}")
        try:
            datetime.fromisoformat(self.time[:-1])
        except ValueError as exc:
            raise EntryError(f"time {self.time!r} is not a real moment") from exc
        if not isinstance(self.digest, str) or not _DIGEST.fullmatch(self.digest):
            raise EntryError("digest must be 64 lower-case hex digits (SHA-256)")
        if not isinstance(self.subject, Mapping) or not self.subject:
            raise EntryError("subject must be a non-empty mapping of business keys")
        for k, v in self.subject.items():
            if not isinstance(k, str) or not k:
                raise EntryError(f"subject key {k!r} must be a non-empty string")
            if v is not None and not isinstance(v, (str, int, bool)):
                raise EntryError(f"subject.{k} must be a string, integer, boolean or null")
        if not isinstance(self.extra, Mapping):
            raise EntryError("extra must be a mapping")
        # private read-only copies: the fields cannot drift from the bytes computed below
        object.__setattr__(self, "subject", MappingProxyType(dict(self.subject)))
        object.__setattr__(self, "extra", MappingProxyType(copy.deepcopy(dict(self.extra))))
        assert_no_personal_data(self)
        try:
            data = canonical_json(self.to_json())
            # extra is part of the whole: only a whole above its limit can hold an extra above it
            if self.extra and len(data) > MAX_EXTRA_BYTES and len(canonical_json(dict(self.extra))) > MAX_EXTRA_BYTES:
                raise EntryError(f"extra exceeds {MAX_EXTRA_BYTES} bytes of canonical JSON")
        except CanonicalJSONError as exc:
            raise EntryError(str(exc)) from exc
        if len(data) > MAX_ENTRY_BYTES:
            raise EntryError(f"entry exceeds {MAX_ENTRY_BYTES} bytes of canonical JSON")
        object.__setattr__(self, "_bytes", data)

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "kind": self.kind,
            "time": self.time,
            "actor": self.actor,
            "subject": dict(self.subject),
            "digest": self.digest,
        }
        if self.extra:
            obj["extra"] = dict(self.extra)
        return obj

    def to_bytes(self) -> bytes:
        """Canonical JSON: the exact bytes stored in the log and hashed into the leaf (computed once)."""
        return self._bytes

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Entry:
        """Parse stored entry bytes, refusing anything not canonical or not shaped like an entry."""
        try:
            obj = parse_canonical(data)
        except CanonicalJSONError as exc:
            raise EntryError(str(exc)) from exc
        if not isinstance(obj, dict) or not set(_FIELDS) <= set(obj) or not set(obj) <= {*_FIELDS, "extra"}:
            raise EntryError("entry must have exactly kind, time, actor, subject, digest and optional extra")
        if "extra" in obj and not obj["extra"]:
            raise EntryError("an empty extra is omitted in canonical entries")
        return cls(
            kind=obj["kind"], actor=obj["actor"], subject=obj["subject"], digest=obj["digest"], time=obj["time"],
            extra=obj.get("extra", {}),
        )  # fmt: skip
