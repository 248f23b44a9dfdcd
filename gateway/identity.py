"""Resident identity numbers (居民身份证号码, GB 11643-1999).

``python-stdnum`` supplies the check digit and the region database, but its ``validate`` also
requires the region code to have existed in the *birth* year. An ID number is assigned where
the person was first registered, which for many rural residents was long after birth (a farmer
born in 1950 registered in 奉节县 after 1997 holds 500236 1950…), so that check would refuse
real beneficiaries. Here a region code is valid if it has ever existed.

>>> validate_resident_id("11010519491231002x")
'11010519491231002X'
>>> problem_of("500236196502310010")[0]
'birth_date'
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

from stdnum.cn import ric

_SHAPE = re.compile(r"\d{17}[\dX]")

PROBLEMS = {
    "length": ("身份证号应为18位", "must have 18 characters"),
    "format": ("身份证号只能是17位数字加一位数字或X", "must be 17 digits and a digit or X"),
    "checksum": ("身份证号校验位错误", "check digit is wrong"),
    "birth_date": ("身份证号中的出生日期无效", "birth date is not a real date"),
    "region": ("身份证号中的地区码不存在", "region code does not exist"),
}


class InvalidResidentId(ValueError):
    def __init__(self, kind: str, value: str) -> None:
        zh, en = PROBLEMS[kind]
        super().__init__(f"resident ID {value!r}: {en}")
        self.kind, self.zh, self.en, self.value = kind, zh, en, value


@lru_cache(maxsize=8192)
def _region_exists(code: str) -> bool:
    from stdnum import numdb

    info = {k: v for _part, props in numdb.get("cn/loc").info(code) for k, v in props.items()}
    return "county" in info


def problem_of(value: str, *, today: dt.date | None = None) -> tuple[str, str, str] | None:
    """``(kind, zh, en)`` of the first problem with ``value``, or ``None`` if it is valid."""
    try:
        validate_resident_id(value, today=today)
    except InvalidResidentId as e:
        return e.kind, e.zh, e.en
    return None


def validate_resident_id(value: str, *, today: dt.date | None = None) -> str:
    """The normalised number (upper-case X); raises :class:`InvalidResidentId` naming the problem."""
    v = value.strip().upper()
    if len(v) != 18:
        raise InvalidResidentId("length", value)
    if not _SHAPE.fullmatch(v):
        raise InvalidResidentId("format", value)
    if v[-1] != ric.calc_check_digit(v):
        raise InvalidResidentId("checksum", value)
    try:
        born = dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        raise InvalidResidentId("birth_date", value) from None
    if born.year < 1880 or born > (today or dt.date.max):
        raise InvalidResidentId("birth_date", value)
    if not _region_exists(v[:6]):
        raise InvalidResidentId("region", value)
    return v


def with_check_digit(first17: str) -> str:
    """Complete 17 digits with their check digit (for test data and the demo)."""
    return first17 + ric.calc_check_digit(first17 + "0")
