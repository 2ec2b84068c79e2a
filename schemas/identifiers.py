"""Check digits of the identifiers CEB messages carry (CEB.md §3).

- GB 11643-1999 citizen ID numbers (18 characters, last one a check digit or ``X``);
- GB 32100-2015 unified social credit codes (USCC, 18 characters);
- 10-character customs registration codes (no check digit; shape only).
"""

from __future__ import annotations

import random
import re
from operator import mul

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_INDEX = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_CHARS = frozenset(USCC_ALPHABET)
_CUSTOMS_CODE = re.compile(r"^[0-9A-Z]{10}$")


def id_check_char(first17: str) -> str:
    if len(first17) == 17 and first17.isascii() and first17.isdigit():
        # The weights are 2**(17-i) mod 11 and 13 = 2 (mod 11): the digits read in base 13, doubled,
        # give the same sum mod 11, and int() does that in C.
        return _ID_CHECK[2 * int(first17, 13) % 11]
    return _ID_CHECK[sum(map(mul, map(int, first17[:17]), _ID_WEIGHTS)) % 11]  # zip's reach: 17 at most


def is_valid_id_number(value: str) -> bool:
    """True when ``value`` is an 18-character ID number whose check digit is right."""
    if len(value) == 18 and value.isascii():  # the usual case, without the regex: ASCII \d is 0-9
        last = value[17]
        return value[:17].isdigit() and (last == "X" or last.isdigit()) and id_check_char(value[:17]) == last
    return bool(_ID_SHAPE.match(value)) and id_check_char(value[:17]) == value[17]


def uscc_check_char(first17: str) -> str:
    total = sum(map(mul, map(_USCC_INDEX.__getitem__, first17[:17]), _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(value: str) -> bool:
    if len(value) != 18 or not _USCC_CHARS.issuperset(value):
        return False
    return uscc_check_char(value[:17]) == value[17]


def is_customs_code(value: str) -> bool:
    return bool(_CUSTOMS_CODE.match(value))


def enterprise_code_problem(value: str) -> str | None:
    """Why ``value`` is not an enterprise code, or None when it is one."""
    if len(value) == 10:
        return None if is_customs_code(value) else "a 10-character customs code uses digits and capital letters only"
    if len(value) == 18:
        return None if is_valid_uscc(value) else "an 18-character USCC must pass the GB 32100 check character"
    return "must be a 10-character customs code or an 18-character unified social credit code"


def make_id_number(rng: random.Random, region: str = "110105", birth: str | None = None) -> str:
    if birth is None:
        birth = f"{rng.randint(1960, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = f"{region}{birth}{rng.randint(0, 999):03d}"
    return body + id_check_char(body)


def make_uscc(rng: random.Random, region: str = "110105") -> str:
    # registration authority 9 (industry & commerce), type 1 (enterprise), region, 9-char org code
    org = "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    body = f"91{region}{org}"
    return body + uscc_check_char(body)


def make_customs_code(rng: random.Random, district: str = "1101") -> str:
    return f"{district}{rng.randint(0, 999999):06d}"
