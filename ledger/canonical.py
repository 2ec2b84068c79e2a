"""Canonical JSON for ledger entries: the RFC 8785 (JCS) subset without numbers other than integers.

Object members sorted by the UTF-16 code units of their names, no insignificant whitespace, strings
escaped as ECMAScript ``JSON.stringify`` does (only ``"``, ``\\`` and controls below U+0020; the short
forms ``\\b \\t \\n \\f \\r``, otherwise ``\\u00xx`` in lower case), UTF-8 output. Floats are refused
outright -- even integral ones -- and integers must lie within the I-JSON safe range, so that every
JSON implementation reads the same value back. The same bytes therefore always hash to the same leaf.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # type: ignore[attr-defined]  # C-accelerated JSON string escaper
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalJSONError(ValueError):
    """The value cannot be represented as canonical JSON, or the bytes are not canonical JSON."""


def _key(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")  # big-endian bytes compare as UTF-16 code units do


def _string(s: str) -> str:
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise CanonicalJSONError(f"string contains a lone surrogate: {s!r}") from exc
    return encode_basestring(s)


def _sorted_keys(value: dict) -> list[str]:
    # Below U+10000, UTF-16 code units order as code points do: plain sorting agrees for such keys.
    if all(k.isascii() for k in value):
        return sorted(value)
    return sorted(value, key=_key)


def _encode_fast(value: Any, out: list[str]) -> None:
    """``_encode`` without tracking where it is; any problem is re-found by ``_encode`` to name it."""
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):  # str and its subclasses (the StrEnum states)
        out.append(_string(value))
    elif type(value) is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        out.append(str(value))
    elif type(value) is dict and all(type(k) is str for k in value):
        out.append("{")
        for n, k in enumerate(_sorted_keys(value)):
            if n:
                out.append(",")
            out.append(_string(k))
            out.append(":")
            _encode_fast(value[k], out)
        out.append("}")
    elif type(value) in (list, tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _encode_fast(item, out)
        out.append("]")
    else:
        raise CanonicalJSONError("slow path")


def _encode(value: Any, out: list[str], path: str) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalJSONError(f"{path}: integer {value} outside the I-JSON safe range")
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise CanonicalJSONError(f"{path}: floats are not allowed in ledger entries ({value!r})")
    elif isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise CanonicalJSONError(f"{path}: object key {k!r} is not a string")
        out.append("{")
        for n, k in enumerate(sorted(value, key=_key)):
            if n:
                out.append(",")
            out.append(_string(k))
            out.append(":")
            _encode(value[k], out, f"{path}.{k}")
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _encode(item, out, f"{path}[{n}]")
        out.append("]")
    else:
        raise CanonicalJSONError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_json(obj: Any) -> bytes:
    """The canonical UTF-8 JSON bytes of ``obj`` (dict/list/tuple/str/int/bool/None only)."""
    out: list[str] = []
    try:
        _encode_fast(obj, out)
    except CanonicalJSONError:
        out = []  # something unusual (a subclass, a float, a bad key …): the careful walk names it
        _encode(obj, out, "$")
    return "".join(out).encode("utf-8")


def _no_float(text: str) -> Any:
    raise CanonicalJSONError(f"floats are not allowed in ledger entries ({text})")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for k, v in pairs:
        if k in obj:
            raise CanonicalJSONError(f"duplicate object key {k!r}")
        obj[k] = v
    return obj


def parse_canonical(data: bytes | str) -> Any:
    """Parse canonical JSON, refusing anything that does not re-serialize to exactly the same bytes."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, parse_float=_no_float, parse_constant=_no_float, object_pairs_hook=_no_duplicates)
    except CanonicalJSONError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:
        raise CanonicalJSONError(f"not valid JSON: {exc}") from exc
    if canonical_json(obj) != raw:
        raise CanonicalJSONError("JSON is valid but not in canonical form")
    return obj
