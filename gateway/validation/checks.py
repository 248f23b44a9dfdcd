"""Pure checks of one value, no database: resident ID (GB 11643) and account number plausibility.

Each returns a list of ``(code, evidence)`` pairs; an empty list means nothing found. Evidence
holds masked personal data only.

>>> check_resident_id("11010519491231002X")
[]
>>> [code for code, _ in check_resident_id("110105194912310021")]
['ID_CHECKSUM']
>>> [code for code, _ in check_resident_id("500236199002310018")]
['ID_BIRTH_DATE']
>>> check_card_number("6217000123456789019", 12, 21, 16, 19)
[]
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from stdnum import numdb
from stdnum.cn import ric

from gateway.privacy import mask_account, mask_id

_DIGITS = frozenset("0123456789")


@lru_cache(maxsize=8192)
def region_known(region: str) -> bool:
    """Is ``region`` (the first 6 digits) an administrative division code that has ever existed?

    python-stdnum's table (GB/T 2260 history) is the source. Unlike ``ric.validate`` this does not
    require the code to have been in force in the birth year: people who move get an ID with the
    code of their new registered residence, and counties are renumbered (Chongqing, 1997).
    """
    info = {k: v for _part, props in numdb.get("cn/loc").info(region) for k, v in props.items()}
    return "county" in info


def check_resident_id(number: str, today: dt.date | None = None) -> list[tuple[str, dict]]:
    """Resident ID validity: 18 characters, check digit, a real birth date (not in the future,
    not before 1900), a known region code. Returns every problem found."""
    n = number.strip().upper()
    if len(n) != 18 or not _DIGITS.issuperset(n[:17]) or not (n[17] in _DIGITS or n[17] == "X"):
        return [("ID_FORMAT", {"id": mask_id(n)})]
    out = []
    expected = ric.calc_check_digit(n)
    if n[17] != expected:
        out.append(("ID_CHECKSUM", {"id": mask_id(n), "expected": expected}))
    y, m, d = int(n[6:10]), int(n[10:12]), int(n[12:14])
    try:
        born = dt.date(y, m, d)
        if born.year < 1900 or (today is not None and born > today):
            raise ValueError
    except ValueError:
        out.append(("ID_BIRTH_DATE", {"id": mask_id(n), "birth": f"{n[6:10]}-{n[10:12]}-{n[12:14]}"}))
    if not region_known(n[:6]):
        out.append(("ID_REGION", {"id": mask_id(n), "region": n[:6]}))
    return out


# each digit doubled, with the digits of the product summed: 5 -> 10 -> 1
_DOUBLED = str.maketrans("0123456789", "0246813579")


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of ASCII digits."""
    total = sum(map(int, digits[-1::-2])) + sum(map(int, digits[-2::-2].translate(_DOUBLED)))
    return total % 10 == 0


def check_card_number(account: str, min_length: int, max_length: int, luhn_min: int, luhn_max: int
                      ) -> list[tuple[str, dict]]:
    """Account number plausibility: digits only, ``min_length``..``max_length`` long; a number of
    card length (``luhn_min``..``luhn_max``) that fails the Luhn check is reported as CARD_LUHN,
    which the rule set can only make a review."""
    a = "".join(account.split())
    if not a or not _DIGITS.issuperset(a):
        return [("CARD_FORMAT", {"account": mask_account(a)})]
    n = len(a)
    if n < min_length or n > max_length:
        return [("CARD_LENGTH", {"account": mask_account(a), "length": n, "min": min_length, "max": max_length})]
    if luhn_min <= n <= luhn_max and not luhn_ok(a):
        return [("CARD_LUHN", {"account": mask_account(a)})]
    return []
