"""Synthetic beneficiaries for demos, rehearsals and benchmarks: realistic names, valid resident IDs
(GB 11643 check digit, real birth dates, the county's region code), Luhn-valid card numbers. Deterministic
for a seed; nothing here is a real person.

>>> p = list(people(3, county="500236", seed=1))
>>> [len(x.id_number) for x in p], all(luhn_ok(x.account) for x in p)
([18, 18, 18], True)
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Iterator

from gateway.identity import with_check_digit

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
            "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤冉")
COMPOUND = ("欧阳", "司马", "上官", "诸葛")
GIVEN = ("伟", "芳", "娜", "秀", "英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
         "超", "兰", "霞", "平", "刚", "桂", "华", "玉", "萍", "红", "建", "国", "志", "德", "小", "春", "梅", "林",
         "大", "成", "福", "贵", "荣", "顺", "秋", "菊", "凤", "珍", "翠", "莲", "长", "友")
CARD_PREFIX = {"cqrcb-fj": "622978", "icbc-cq": "621226", "psbc-xs": "621799"}


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    account: str
    birth: dt.date


def luhn_check_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    return luhn_check_digit(number[:-1]) == number[-1]


def card_number(prefix: str, serial: int) -> str:
    """A 19-digit card number with a valid Luhn digit."""
    body = f"{prefix}{serial:012d}"
    return body + luhn_check_digit(body)


def name(rng: random.Random) -> str:
    surname = rng.choice(COMPOUND) if rng.random() < 0.01 else rng.choice(SURNAMES)
    return surname + "".join(rng.choice(GIVEN) for _ in range(1 if rng.random() < 0.3 else 2))


def people(n: int, *, county: str, seed: int = 0, bank: str = "cqrcb-fj", start: int = 0) -> Iterator[Person]:
    """``n`` distinct people of ``county``; the i-th person is the same for the same seed, whatever ``n``."""
    prefix = CARD_PREFIX.get(bank, "621700")
    for i in range(start, start + n):
        rng = random.Random(f"{seed}:{county}:{i}")
        # (birth date, 3-digit sequence) is injective in i, so IDs are distinct for up to 2M people:
        # for a fixed sequence the birth date advances 9 days per thousand people.
        seq, k = i % 1000, i // 1000
        birth = dt.date(1936, 1, 1) + dt.timedelta(days=k * 9 + (seq * 7919 + seed * 31) % 9000)
        idn = with_check_digit(f"{county}{birth:%Y%m%d}{seq:03d}")
        yield Person(name(rng), idn, card_number(prefix, i + 1), birth)
