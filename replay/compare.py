"""Set what happened beside what the manifest expects, in one place, so every report agrees on a mismatch.

A file differs when its outcome does, or -- for a rejection -- its HTTP status, layer or code does (each
compared only when the manifest names it). A declaration differs when its state does (and, when the
manifest names one, the code that begins its first reason), or when it never reached a final state.
"""

from __future__ import annotations

import re
from typing import Any

from .records import DeclarationRecord, FileRecord, Mismatch

# A code is the first token after a "…: " that looks like one: "-621041", "100", "2001".
_CODE = re.compile(r"-?\d[\w.-]*")
_COLON = re.compile("[:\uff1a]")  # an ASCII or a full-width colon


def reason_code(reason: str | None) -> str | None:
    """The code that begins a reason's text after "<regulator> refused the <kind>: ".

    "customs refused the inventory: -621041 order acturalPaid …" gives "-621041"; "inspection refused
    the inventory: -621501 inspection: …" gives "-621501"; "customs: manual review (人工审核): …" gives
    None (no segment starts with a code).
    """
    if not reason:
        return None
    for colon in _COLON.finditer(reason):
        words = reason[colon.end():].split(None, 1)
        token = words[0].rstrip(",;.)") if words else ""
        if _CODE.fullmatch(token):
            return token
    return None


def leading_code(text: str | None) -> str | None:
    """The code a regulator's info starts with: "-701004 list … is statisticsFlag A" gives "-701004"."""
    words = (text or "").split(None, 1)
    token = words[0].rstrip(",;.:)") if words else ""
    return token if token.startswith("-") and _CODE.fullmatch(token) else None


def describe_expect(expect: dict[str, Any] | None) -> str:
    if not expect:
        return "-"
    if "outcome" in expect:
        if expect["outcome"] != "rejected":
            return str(expect["outcome"])
        parts = [str(expect.get(k)) for k in ("httpStatus", "layer", "code") if expect.get(k) is not None]
        return "rejected " + " ".join(parts) if parts else "rejected"
    state = str(expect.get("state"))
    if expect.get("extent"):
        state = f"{state} {expect['extent']}"
    return f"{state} {expect['code']}" if expect.get("code") else state


def describe_file(rec: FileRecord) -> str:
    if rec.outcome == "accepted":
        return "accepted"
    if rec.outcome == "error":
        return f"error: {rec.message}" if rec.status is None else f"error {rec.status}: {rec.message}"
    parts = [str(v) for v in (rec.status, rec.layer, rec.code) if v is not None]
    return "rejected " + " ".join(parts)


def describe_declaration(rec: DeclarationRecord, wait: float | None) -> str:
    state = rec.state or "unknown to the target"
    if rec.extent and rec.state == "returned":
        state = f"{state} {rec.extent}"
    text = f"{state} {rec.code}" if rec.code and rec.state == "rejected" else state
    if not rec.final:
        text += f" (not final {wait:g} s after filing)" if wait is not None else " (not final)"
    return text


def check_file(rec: FileRecord) -> Mismatch | None:
    expect = rec.item.expect
    if expect is None:
        return None
    differs = rec.outcome != expect.get("outcome")
    if not differs and rec.outcome == "rejected":
        wanted = {"httpStatus": rec.status, "layer": rec.layer, "code": rec.code}
        differs = any(expect.get(k) is not None and str(expect[k]) != str(v) for k, v in wanted.items())
    if not differs:
        return None
    got = describe_file(rec)
    rec.mismatch = f"expected {describe_expect(expect)}, got {got}"
    detail = f"HTTP {rec.status}: {rec.excerpt}" if rec.status is not None else rec.message
    return Mismatch("file", rec.item.file, str(rec.item.path), describe_expect(expect), got, detail)


def matches_state(expect: dict[str, Any], state: str | None, code: str | None, extent: str | None = None) -> bool:
    if state != expect.get("state"):
        return False
    if expect.get("extent") and expect["extent"] != extent:
        return False
    return not (expect.get("code") and str(expect["code"]) != str(code))


def check_declaration(rec: DeclarationRecord, wait: float) -> Mismatch | None:
    rec.compared = True
    expect = rec.item.expect
    if rec.final and matches_state(expect, rec.state, rec.code, rec.extent):
        return None
    got = describe_declaration(rec, wait)
    rec.mismatch = f"expected {describe_expect(expect)}, got {got}"
    detail = " | ".join(rec.reasons[:3]) or None
    return Mismatch("declaration", rec.item.key, None, describe_expect(expect), got, detail)
