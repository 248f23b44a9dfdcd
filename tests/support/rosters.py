"""Builders for roster files used by the intake tests: valid resident IDs, realistic names."""

from __future__ import annotations

import csv
import io

from gateway.identity import with_check_digit

HEADER = ["姓名", "身份证号", "银行账号", "代发银行", "金额", "实施单位"]


def resident_id(region: str = "500236", birth: str = "19650312", seq: int = 101) -> str:
    return with_check_digit(f"{region}{birth}{seq:03d}")


NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨秀英", "黄勇", "赵敏", "周桂兰", "吴建国", "欧阳小明", "谭德华"]


def rows(n: int, *, bank: str = "cqrcb-fj", unit: str = "500236101", amount: str = "1500.00") -> list[list[str]]:
    return [[NAMES[i % len(NAMES)], resident_id(seq=100 + i % 900, birth=f"19{50 + i // 900 % 50:02d}0312"),
             f"62170001{i:011d}", bank, amount, unit] for i in range(n)]


def csv_bytes(body: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(body)
    return buf.getvalue().encode(encoding)
