"""Roster reading: every row problem named with row, column and value; a broken roster is refused whole [Art. 15-16]."""

import io

import pytest
from openpyxl import Workbook

from gateway.intake.roster import RosterRejected, read_roster
from tests.support.rosters import HEADER, csv_bytes, resident_id, rows

BANKS = {"cqrcb-fj": "cqrcb-fj", "314653000017": "cqrcb-fj", "icbc-cq": "icbc-cq"}
UNITS = {"500236101", "500236102"}


def read(data, source="roster.csv"):
    return list(read_roster(data, source=source, known_banks=BANKS, known_units=UNITS))


def problems(data, source="roster.csv"):
    with pytest.raises(RosterRejected) as e:
        read(data, source)
    return e.value.problems


def test_valid_csv_utf8_and_gbk():
    body = rows(5)
    for enc in ("utf-8", "gbk"):
        got = read(csv_bytes(body, encoding=enc))
        assert [r.name for r in got] == [b[0] for b in body]
        assert got[0].row == 2 and str(got[0].amount) == "1500.00"
    assert read(b"\xef\xbb\xbf" + csv_bytes(body))[0].name == body[0][0]  # UTF-8 with BOM (Excel's "CSV UTF-8")


def test_bank_code_resolves_to_bank_id():
    body = rows(1)
    body[0][3] = "314653000017"
    assert read(csv_bytes(body))[0].bank == "cqrcb-fj"


@pytest.mark.parametrize("mutate, row, column, fragment", [
    (lambda b: b[1].__setitem__(1, b[1][1][:-1] + ("0" if b[1][1][-1] != "0" else "1")), 3, "身份证号", "校验位"),
    (lambda b: b[0].__setitem__(1, resident_id(birth="19650231")), 2, "身份证号", "出生日期"),  # 31 February
    (lambda b: b[2].__setitem__(4, "-100.00"), 4, "金额", "大于零"),
    (lambda b: b[2].__setitem__(4, "12.345"), 4, "金额", "两位小数"),
    (lambda b: b[2].__setitem__(4, "abc"), 4, "金额", "不是数字"),
    (lambda b: b.append(list(b[0])), 7, "身份证号", "与第 2 行重复"),
    (lambda b: b[0].__setitem__(3, "中国银行"), 2, "代发银行", "代发银行"),
    (lambda b: b[0].__setitem__(5, "999999999"), 2, "实施单位", "实施单位"),
    (lambda b: b[0].__setitem__(2, "6217-0001"), 2, "银行账号", "6至32位"),
    (lambda b: b[0].__setitem__(0, ""), 2, "姓名", "不能为空"),
    (lambda b: b[0].__setitem__(1, "5.00236E+17"), 2, "身份证号", "存成了数字"),
])
def test_bad_rows_named_and_nothing_returned(mutate, row, column, fragment):
    body = rows(5)
    mutate(body)
    found = problems(csv_bytes(body))
    assert any(p.row == row and p.column == column and fragment in p.zh for p in found), [str(p) for p in found]


def test_all_problems_in_one_run():
    body = rows(6)
    body[0][4] = "-1"
    body[3][1] = "123"
    body[5][3] = "nobank"
    found = problems(csv_bytes(body))
    assert {p.row for p in found} == {2, 5, 7}


def test_wrong_columns_refused_whole():
    found = problems(csv_bytes(rows(2), header=["姓名", "身份证", "银行账号", "代发银行", "金额", "实施单位"]))
    text = " ".join(str(p) for p in found)
    assert "未知的列“身份证”" in text and "缺少必填列“身份证号”" in text


def test_wrong_encoding_names_line():
    data = csv_bytes(rows(3))
    data = data.replace("王芳".encode(), b"\xff\xfe\xfa")
    found = problems(data)
    assert found[0].row == 3 and "编码" in found[0].zh


def test_empty_and_header_only():
    assert "名册为空" in problems(b"")[0].zh
    assert "没有数据行" in problems(csv_bytes([]))[0].zh


def _xlsx(body, *, formula=False, merge=False) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in body:
        ws.append(r)
    if formula:
        ws["E3"] = "=1000+500"
    if merge:
        ws.merge_cells("F2:F3")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_xlsx_valid():
    got = read(_xlsx(rows(3)), "roster.xlsx")
    assert len(got) == 3 and got[2].name == rows(3)[2][0]


def test_xlsx_numeric_amount_cell():
    body = rows(1)
    body[0][4] = 1500.5  # a number cell, as Excel stores it
    assert str(read(_xlsx(body), "r.xlsx")[0].amount) == "1500.50"


def test_xlsx_formula_refused():
    found = problems(_xlsx(rows(3), formula=True), "roster.xlsx")
    assert any(p.row == 3 and p.column == "E3" and "公式" in p.zh for p in found)


def test_xlsx_merged_cells_refused():
    found = problems(_xlsx(rows(3), merge=True), "roster.xlsx")
    assert any("合并单元格" in p.zh and p.column == "F2:F3" for p in found)


def test_xlsx_id_as_number_refused():
    body = rows(1)
    body[0][1] = int(resident_id()[:17] + "0") if resident_id()[-1] != "X" else 500236196503121010
    found = problems(_xlsx(body), "roster.xlsx")
    assert any(p.column == "身份证号" for p in found)


def test_not_xlsx_but_zip():
    assert "XLSX" in problems(b"PK\x03\x04garbage", "r.xlsx")[0].zh


def test_message_is_bilingual_and_plain():
    body = rows(2)
    body[1][4] = "-5"
    with pytest.raises(RosterRejected) as e:
        read(csv_bytes(body))
    assert "名册有 1 处错误" in e.value.plain() and "nothing imported" in e.value.plain()
