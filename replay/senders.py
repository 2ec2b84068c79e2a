"""Keys for the enterprises that file: register the set's enterprises, or fetch a fresh key for each sender.

Keys are shown once by swx, so a replay cannot read an existing one back: a code already registered
(409) gets a new key from ``POST /v1/enterprises/{code}/keys`` instead, which leaves the firm's other
keys working. Plain folders register nothing: their senders must be registered already.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx


@dataclass
class Keys:
    by_code: dict[str, str] = field(default_factory=dict)  # customs code or USCC -> API key
    refused: dict[str, str] = field(default_factory=dict)  # code -> why no key
    log: list[dict[str, Any]] = field(default_factory=list)  # what registration did, for the report

    def add(self, codes: Iterable[str], key: str) -> None:
        for code in codes:
            self.by_code[code] = key
            self.refused.pop(code, None)


def segment(value: str) -> str:
    """``value`` as one URL path segment: codes come from a manifest, and must not steer the operator's
    token to another endpoint ("/" is encoded, and a segment of dots would be removed by normalisation)."""
    return "%2E" * len(value) if value and not value.strip(".") else quote(value, safe="")


def codes_of(body: dict[str, Any]) -> list[str]:
    """Every code a registration body names (minimal bodies use ``code``, full ones customsCode / uscc)."""
    return [c for c in (body.get("code"), body.get("customsCode"), body.get("uscc")) if isinstance(c, str) and c]


async def obtain(client: httpx.AsyncClient, operator: dict[str, str], enterprises: list[dict[str, Any]],
                 senders: Iterable[str], *, parallel: int = 8) -> Keys:
    """Register ``enterprises`` (or re-key the ones already there), then find keys for any other sender."""
    keys = Keys()
    gate = asyncio.Semaphore(max(1, parallel))

    async def register(body: dict[str, Any]) -> None:
        codes = codes_of(body)
        if not codes:
            keys.log.append({"codes": [], "result": "skipped: no code in the registration"})
            return
        async with gate:
            try:
                r = await client.post("/v1/enterprises", json=body, headers=operator)
            except httpx.HTTPError as exc:
                _refuse(keys, codes, f"registration failed: {type(exc).__name__}: {exc}")
                return
            if r.status_code == 201 and (key := _api_key(r)):
                keys.add(codes, key)
                keys.log.append({"codes": codes, "result": "registered"})
            elif r.status_code == 409:
                await rekey(codes[0], codes)
            else:
                _refuse(keys, codes, f"registration refused: HTTP {r.status_code}: {_excerpt(r)}")

    async def rekey(code: str, codes: list[str]) -> None:
        try:
            r = await client.post(f"/v1/enterprises/{segment(code)}/keys", json={}, headers=operator)
        except httpx.HTTPError as exc:
            _refuse(keys, codes, f"no key: {type(exc).__name__}: {exc}")
            return
        if r.status_code == 201 and (key := _api_key(r)):
            keys.add(codes, key)
            keys.log.append({"codes": codes, "result": "already registered: new key"})
        elif r.status_code == 404:
            _refuse(keys, codes, "sender not registered at the target")
        else:
            _refuse(keys, codes, f"no key: HTTP {r.status_code}: {_excerpt(r)}")

    await asyncio.gather(*(register(b) for b in enterprises))
    others = sorted({s for s in senders if s and s not in keys.by_code and s not in keys.refused})

    async def fetch(code: str) -> None:
        async with gate:
            await rekey(code, [code])

    await asyncio.gather(*(fetch(c) for c in others))
    return keys


def _api_key(r: httpx.Response) -> str | None:
    try:
        key = r.json().get("apiKey")
    except (ValueError, AttributeError):
        return None
    return key if isinstance(key, str) and key else None


def _refuse(keys: Keys, codes: list[str], why: str) -> None:
    for code in codes:
        if code not in keys.by_code:
            keys.refused[code] = why
    keys.log.append({"codes": codes, "result": why})


def _excerpt(r: httpx.Response, limit: int = 300) -> str:
    text = r.text
    return text if len(text) <= limit else text[:limit] + "…"
