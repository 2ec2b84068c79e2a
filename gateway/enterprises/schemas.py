"""Request and response bodies of the registry, with the rule each field is held to.

Every malformed field is refused with ``422``; each error names the field (``contact.email``,
``certificates.1``) and the rule it broke.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from schemas.identifiers import enterprise_code_problem, is_customs_code, is_valid_uscc

from .certificates import pem_problem
from .record import ROLES

EXAMPLE_CUSTOMS_CODE = "3301960AB1"
EXAMPLE_USCC = "91330106MA2KLM8Q4M"
EXAMPLE_CERT = """-----BEGIN CERTIFICATE-----
MIIBUTCB96ADAgECAgVaF8DeATAKBggqhkjOPQQDAjAwMRMwEQYDVQQDDAozMzAx
OTYwQUIxMRkwFwYDVQQKDBBIYW5nemhvdSBZdW56aGFuMB4XDTI1MDEwMTAwMDAw
MFoXDTI4MDEwMTAwMDAwMFowMDETMBEGA1UEAwwKMzMwMTk2MEFCMTEZMBcGA1UE
CgwQSGFuZ3pob3UgWXVuemhhbjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABBtQ
cAhHVJ65E+bjTLzWqFUapTk+jXmMZOyCHMkIBhKfdzpqarPgXBcALHq9qp9x9YGq
Ln68EsQrY9Sh4jiZjlEwCgYIKoZIzj0EAwIDSQAwRgIhAI2Ql/sKHoPmqXFStF8I
op9ONdlIHeTyMsRQ8bGzpID7AiEAzOYLQT+lysvdAPWpsmiMqlLKIKdbYeYWsK0r
hlRjyOE=
-----END CERTIFICATE-----
"""

_DIGITS4 = re.compile(r"^\d{4}$")
_DIGITS6 = re.compile(r"^\d{6}$")
_DXP = re.compile(r"^[A-Za-z0-9_.-]{1,30}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{4,19}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _rule(check, message: str):
    def validate(v: str) -> str:
        if not check(v):
            raise ValueError(message)
        return v

    return AfterValidator(validate)


def _text(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("must not be blank")
    return v


def _iso_date(v: Any) -> Any:
    if not isinstance(v, str) or not _ISO_DATE.match(v):
        raise ValueError("must be an ISO date YYYY-MM-DD")
    try:
        return date.fromisoformat(v)
    except ValueError:
        raise ValueError("must be an ISO date YYYY-MM-DD that exists on the calendar") from None


def _pem(v: str) -> str:
    problem = pem_problem(v)
    if problem:
        raise ValueError(problem)
    return v


def _roles(v: list[str]) -> list[str]:
    unknown = [r for r in v if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(map(str, unknown))}; roles are {', '.join(ROLES)}")
    return sorted(set(v), key=ROLES.index)


def _categories(v: list[str]) -> list[str]:
    return list(dict.fromkeys(v))


CustomsCode = Annotated[
    str, _rule(is_customs_code, "a customs code is 10 characters, digits and capital letters only"),
    Field(description="10-character customs registration code (海关编码)", examples=[EXAMPLE_CUSTOMS_CODE]),
]
Uscc = Annotated[
    str, _rule(is_valid_uscc, "a USCC is 18 characters that pass the GB 32100-2015 check character"),
    Field(description="18-character unified social credit code (统一社会信用代码)", examples=[EXAMPLE_USCC]),
]
Name = Annotated[str, Field(min_length=1, max_length=100, examples=["杭州云栈跨境电子商务有限公司"]), AfterValidator(_text)]
CustomsOffice = Annotated[
    str, _rule(_DIGITS4.match, "the registering customs office is a 4-digit customs district code"),
    Field(description="registering customs office: 4-digit district code (主管海关)", examples=["2901"]),
]
RegionCode = Annotated[
    str, _rule(_DIGITS6.match, "a region code is the 6-digit administrative division code (GB/T 2260)"),
    Field(description="6-digit administrative division code (行政区划)", examples=["330106"]),
]
EconomicZone = Annotated[
    str, Field(min_length=1, max_length=100, description="economic zone (经济区划)", examples=["中国(杭州)跨境电子商务综合试验区"]),
    AfterValidator(_text),
]
Category = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_text)]
Categories = Annotated[
    list[Category], Field(max_length=50, description="business categories (经营类别)", examples=[["进出口货物收发货人", "跨境电商"]]),
    AfterValidator(_categories),
]
Roles = Annotated[
    list[str], Field(min_length=1, description=f"cross-border e-commerce roles, at least one of {', '.join(ROLES)}",
                     examples=[["ebp", "ebc"]]),
    AfterValidator(_roles),
]
CreditRating = Annotated[
    Literal["advanced", "general", "dishonest"],
    Field(description="customs credit rating: advanced certified (高级认证), general (一般信用), dishonest (失信)"),
]
IsoDate = Annotated[date, BeforeValidator(_iso_date), Field(description="ISO date YYYY-MM-DD")]
DxpId = Annotated[
    str, _rule(_DXP.match, "a dxpId is 1 to 30 letters, digits, '.', '_' or '-'"),
    Field(description="the enterprise's id on the data exchange platform (DXP)", examples=["DXPENT0000012345"]),
]
Pem = Annotated[str, AfterValidator(_pem), Field(description="one PEM X.509 certificate", examples=[EXAMPLE_CERT])]


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=50, examples=["王芳"]), AfterValidator(_text)]
    phone: Annotated[
        str, _rule(_PHONE.match, "a phone number is 5 to 20 digits, optionally with a leading '+', spaces, '-' or parentheses"),
        Field(examples=["+86 571 8888 0000"]),
    ] | None = None
    email: Annotated[
        str, Field(max_length=100, examples=["customs@yunzhan.example"]), _rule(_EMAIL.match, "an email address is name@domain.tld"),
    ] | None = None


FULL_EXAMPLE = {
    "customsCode": EXAMPLE_CUSTOMS_CODE, "uscc": EXAMPLE_USCC, "name": "杭州云栈跨境电子商务有限公司",
    "customsOffice": "2901", "regionCode": "330106", "economicZone": "中国(杭州)跨境电子商务综合试验区",
    "businessCategories": ["进出口货物收发货人", "跨境电商"], "roles": ["ebp", "ebc"], "creditRating": "advanced",
    "validFrom": "2025-01-01", "validTo": "2029-12-31",
    "contact": {"name": "王芳", "phone": "+86 571 8888 0000", "email": "customs@yunzhan.example"},
    "dxpId": "DXPENT0000012345", "certificates": [EXAMPLE_CERT],
}
MINIMAL_EXAMPLE = {"code": EXAMPLE_CUSTOMS_CODE, "name": "杭州云栈跨境电子商务有限公司", "roles": ["ebp", "ebc"], "dxpId": "DXPENT0000012345"}


class RecordFields(BaseModel):
    """Every field of a registration record; a change names only the fields it changes."""

    model_config = ConfigDict(extra="forbid")

    customsCode: CustomsCode | None = None
    uscc: Uscc | None = None
    name: Name | None = None
    customsOffice: CustomsOffice | None = None
    regionCode: RegionCode | None = None
    economicZone: EconomicZone | None = None
    businessCategories: Categories | None = None
    roles: Roles | None = None
    creditRating: CreditRating | None = None
    validFrom: IsoDate | None = None
    validTo: IsoDate | None = None
    contact: Contact | None = None
    dxpId: DxpId | None = None
    certificates: Annotated[list[Pem], Field(max_length=10)] | None = Field(
        default=None, description="PEM X.509 certificates whose signatures the enterprise will send (not private keys)"
    )


class EnterpriseIn(RecordFields):
    """A registration: the full record, or the minimal ``{"code", "name", "roles", "dxpId"}``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [FULL_EXAMPLE, MINIMAL_EXAMPLE]})

    code: Annotated[str, Field(description="minimal form: a 10-character customs code or an 18-character USCC",
                               examples=[EXAMPLE_CUSTOMS_CODE])] | None = None
    name: Name
    roles: Roles
    creditRating: CreditRating = "general"
    businessCategories: Categories = []

    @field_validator("code")
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        if v is not None and (problem := enterprise_code_problem(v)):
            raise ValueError(problem)
        return v


class RecordChange(RecordFields):
    """A change to a registration: only the fields named change; ``null`` clears an optional field."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "杭州云栈国际贸易有限公司"}, {"contact": {"name": "李强", "email": "li@yunzhan.example"}}]})

    @field_validator("name", "roles", "creditRating", "businessCategories", mode="before")
    @classmethod
    def _not_null(cls, v: Any) -> Any:
        if v is None:
            raise ValueError("cannot be cleared: send a value")
        return v


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "name change matches the business licence"}]})

    note: Annotated[str, Field(max_length=500)] | None = None


# The request body's examples, for an enterprise's keys and a regulator's alike.
KEY_REQUEST_EXAMPLES = {
    "rotate": {"summary": "rotate: a new key, every other one revoked", "value": {"revokeOthers": True}},
    "add": {"summary": "an additional key", "value": {"revokeOthers": False}},
}


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"revokeOthers": True}]})

    revokeOthers: bool = Field(False, description="revoke every other key of the enterprise or regulator (rotation)")


# ---- answers ------------------------------------------------------------------------------------------

STORED_CERT_EXAMPLE = {
    "pem": EXAMPLE_CERT, "serial": "5A17C0DE01", "subject": "O=Hangzhou Yunzhan,CN=3301960AB1",
    "issuer": "O=Hangzhou Yunzhan,CN=3301960AB1", "notBefore": "2025-01-01T00:00:00+00:00",
    "notAfter": "2028-01-01T00:00:00+00:00", "sha256": "…",
}
RECORD_EXAMPLE = {**FULL_EXAMPLE, "certificates": [STORED_CERT_EXAMPLE]}


class EnterpriseCreated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": EXAMPLE_CUSTOMS_CODE, "apiKey": "swx_…", "version": 1, "status": "active"}]})

    code: str = Field(description="the code the enterprise is registered under: its customs code, else its USCC")
    apiKey: str = Field(description="shown once; swx keeps only its hash")
    version: int
    status: str


class PendingOut(BaseModel):
    version: int
    changedFields: list[str]
    record: dict
    createdBy: str
    createdAt: str


class EnterpriseOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": EXAMPLE_CUSTOMS_CODE, "status": "active", "version": 3, "record": RECORD_EXAMPLE,
        "createdAt": "2025-01-01T08:00:00+00:00", "updatedAt": "2025-03-01T08:00:00+00:00",
        "pending": {"version": 4, "changedFields": ["name"], "record": {**RECORD_EXAMPLE, "name": "杭州云栈国际贸易有限公司"},
                    "createdBy": EXAMPLE_CUSTOMS_CODE, "createdAt": "2025-03-02T08:00:00+00:00"},
    }]})

    code: str
    status: str = Field(description="active, suspended or cancelled")
    version: int = Field(description="the version in effect")
    record: dict
    createdAt: str
    updatedAt: str
    pending: PendingOut | None = Field(None, description="a change waiting for the operator's approval")


class VersionOut(BaseModel):
    version: int
    state: str = Field(description="active, pending, rejected or superseded")
    kind: str = Field(description="registered, changed, suspended, reinstated or cancelled")
    status: str = Field(description="lifecycle status as of this version")
    changedFields: list[str]
    createdBy: str
    createdAt: str
    decidedAt: str | None
    note: str | None
    record: dict


class VersionsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": EXAMPLE_CUSTOMS_CODE, "versions": [
        {"version": 1, "state": "superseded", "kind": "registered", "status": "active", "changedFields": list(FULL_EXAMPLE),
         "createdBy": "operator", "createdAt": "2025-01-01T08:00:00+00:00", "decidedAt": None, "note": None, "record": RECORD_EXAMPLE},
        {"version": 2, "state": "active", "kind": "changed", "status": "active", "changedFields": ["name"],
         "createdBy": EXAMPLE_CUSTOMS_CODE, "createdAt": "2025-03-02T08:00:00+00:00", "decidedAt": "2025-03-03T08:00:00+00:00",
         "note": "matches the business licence", "record": {**RECORD_EXAMPLE, "name": "杭州云栈国际贸易有限公司"}},
    ]}]})

    code: str
    versions: list[VersionOut]


class KeyCreated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"id": 7, "apiKey": "swx_…", "prefix": "swx_AbCdEfGh"}]})

    id: int
    apiKey: str = Field(description="shown once; swx keeps only its hash")
    prefix: str


class KeyOut(BaseModel):
    id: int
    prefix: str
    createdAt: str
    revokedAt: str | None


class KeysOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"keys": [
        {"id": 3, "prefix": "swx_Xy12Ab34", "createdAt": "2025-01-01T08:00:00+00:00", "revokedAt": "2025-02-01T08:00:00+00:00"},
        {"id": 7, "prefix": "swx_AbCdEfGh", "createdAt": "2025-02-01T08:00:00+00:00", "revokedAt": None},
    ]}]})

    keys: list[KeyOut]


# The enterprise a path names, by either of its codes.
Code = Annotated[str, Path(description="the enterprise's customs code or USCC", examples=["3301960AB1"])]
