"""Answers of the regulators' endpoints, and the examples the OpenAPI document shows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

VIEW_EXAMPLE = {
    "code": "3301960AB1", "version": 3, "status": "active", "customsCode": "3301960AB1", "uscc": "91330106MA2KLM8Q4M",
    "name": "杭州云栈跨境电子商务有限公司", "roles": ["ebp", "ebc"], "regionCode": "330106",
    "validFrom": "2025-01-01", "validTo": "2029-12-31",
}
CHANGES_EXAMPLE = {
    "changes": [
        {"id": 41, "kind": "registered", "code": "3301960AB1", "version": 1, "sharedAt": "2025-01-01T08:00:00+00:00",
         "record": {**VIEW_EXAMPLE, "version": 1}},
        {"id": 57, "kind": "suspended", "code": "3301960AB1", "version": 2, "sharedAt": "2025-02-01T08:00:00+00:00",
         "record": {**VIEW_EXAMPLE, "version": 2, "status": "suspended"}},
    ],
    "next": 57,
}
ACCESS_LOG_EXAMPLE = {
    "code": "3301960AB1",
    "entries": [
        {"id": 9, "regulator": "fx", "version": 1, "via": "changes", "at": "2025-01-01T08:05:00+00:00",
         "fields": ["code", "version", "status", "customsCode", "uscc", "name", "regionCode", "roles", "validFrom", "validTo"]},
        {"id": 12, "regulator": "customs", "version": 1, "via": "read", "at": "2025-01-02T09:00:00+00:00",
         "fields": ["code", "version", "status", "customsCode", "uscc", "name", "…"]},
    ],
    "next": 12,
}
POLICY_EXAMPLE = {
    "regulators": {"fx": ["customsCode", "uscc", "name", "regionCode", "roles", "validFrom", "validTo"]},
    "metadata": ["code", "version", "status"],
}


class RegulatorKeyCreated(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"apiKey": "swx_…", "id": 2, "prefix": "swx_Q1w2E3r4"}]})

    apiKey: str = Field(description="shown once; swx keeps only its hash")
    id: int
    prefix: str
