"""Keys for the enterprises that file: register the set's enterprises, or fetch a fresh key for each sender.

Keys are shown once by swx, so a replay cannot read an existing one back: a code already registered
(409) gets a new key from ``POST /v1/enterprises/{code}/keys`` instead, which leaves the firm's other
keys working. Plain folders register nothing -- their senders must be registered already -- unless
``--register-senders`` asks for :func:`registrations_from`: every enterprise the messages name, so that
captured traffic replays against a fresh window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from lxml import etree

from kit.envelope import EnvelopeError, dxp_payload, is_envelope
from schemas.catalog import CEB_NS, ENTERPRISE_FIELDS

# Values that stand for "no enterprise" in a party field (CEB.md §8.3): never registered.
PLACEHOLDER_CODES = frozenset({"无", "NO"})
_C = f"{{{CEB_NS}}}"


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


def registrations_from(messages: Iterable[bytes]) -> list[dict[str, Any]]:
    """``POST /v1/enterprises`` bodies for every enterprise that ``messages`` name: the roles from the
    fields naming them (ebpCode → ebp, …, declAgentCode → agent: ``schemas.catalog.ENTERPRISE_FIELDS``),
    the name from the matching name field (the first one seen), the exchange id from the BaseTransfer
    (or the envelope) of the messages it transmits. Placeholders (无, NO) are skipped; a code with no
    name anywhere takes its BaseTransfer copName. Read without trusting the files (no DTD, no entities)."""
    found: dict[str, dict[str, Any]] = {}
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    for data in messages:
        try:
            root = etree.fromstring(data, parser)
            sender_id = None
            if is_envelope(root):
                sender_id = root.findtext(".//{*}SenderId")
                root = etree.fromstring(dxp_payload(root), parser)
        except (etree.XMLSyntaxError, EnvelopeError, ValueError):
            continue
        for el in root.iter():
            if not isinstance(el.tag, str) or not el.tag.startswith(_C):
                continue
            name = el.tag[len(_C):]
            code = (el.text or "").strip()
            if name not in ENTERPRISE_FIELDS or not code or code in PLACEHOLDER_CODES:
                continue
            entry = found.setdefault(code, {"code": code, "roles": set()})
            entry["roles"].add(ENTERPRISE_FIELDS[name])
            label = (el.getparent().findtext(_C + name[:-4] + "Name") or "").strip() if el.getparent() is not None else ""
            if label and "name" not in entry:
                entry["name"] = label
        transfer = root.find(_C + "BaseTransfer")
        if transfer is not None:
            code = (transfer.findtext(_C + "copCode") or "").strip()
            if code and code not in PLACEHOLDER_CODES:
                entry = found.setdefault(code, {"code": code, "roles": set()})
                dxp = (transfer.findtext(_C + "dxpId") or "").strip() or sender_id
                if dxp:
                    entry.setdefault("dxpId", dxp)
                entry.setdefault("copName", (transfer.findtext(_C + "copName") or "").strip())
    out = []
    for code in sorted(found):
        e = found[code]
        name = e.get("name") or e.get("copName")
        if not e["roles"] or not name:
            continue  # a transmitter named in no party field: no role to register it for
        body = {"code": code, "name": name, "roles": sorted(e["roles"])}
        if e.get("dxpId"):
            body["dxpId"] = e["dxpId"]
        out.append(body)
    return out
