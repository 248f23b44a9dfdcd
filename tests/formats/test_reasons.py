"""The reason-code table: every bank word to one project code; unknown words kept under NARR."""

from __future__ import annotations

import copy
import doctest
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import formats.reasons
from formats.errors import FormatError
from formats.reasons import Reason, ReasonTable, ReasonTableError

CONFIG = Path(__file__).resolve().parents[2] / "config" / "reason_codes.toml"


@pytest.fixture(scope="module")
def raw() -> dict:
    with open(CONFIG, "rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def table(raw) -> ReasonTable:
    return ReasonTable.from_mapping(raw, source="config/reason_codes.toml")


REQUIRED_CODES = ["AC01", "AC04", "AC06", "BE01", "MD07", "AM05", "AM04", "AG01", "RC01", "FF01", "DU01", "AM02",
                  "AM09", "NARR"]


def test_shipped_table_has_every_code_with_three_descriptions(table):
    for code in REQUIRED_CODES:
        r = table.get(code)
        assert r.code == code and r.zh and r.en and r.explain


BANK_WORDS = [
    ("户名不符", "BE01"), ("证件号码不符", "BE01"), ("证件号不符", "BE01"),
    ("账户已销户", "AC04"), ("已销户", "AC04"),
    ("账户冻结", "AC06"), ("挂失", "AC06"), ("账户状态异常", "AC06"), ("睡眠户", "AC06"), ("止付", "AC06"),
    ("卡号不存在", "AC01"), ("账户不存在", "AC01"), ("账号不存在", "AC01"),
    ("客户已身故", "MD07"), ("重复交易", "AM05"), ("余额不足", "AM04"), ("交易受限", "AG01"),
    ("行号错误", "RC01"), ("文件格式错误", "FF01"), ("批次号重复", "DU01"), ("超过限额", "AM02"), ("金额错误", "AM09"),
    # banks decorate their words: spaces, full-width forms, punctuation, longer sentences
    (" 户名不符。", "BE01"), ("户名 不符", "BE01"), ("ｅ１０４", "AC04"), ("该卡已挂失，请联系开户行", "AC06"),
    ("交易失败:账户已销户", "AC04"), ("批次号重复,拒绝处理", "DU01"),  # the longest known words win over 重复
    ("E101", "AC01"),
]


@pytest.mark.parametrize("text,code", BANK_WORDS)
def test_bank_words_map_to_one_project_code(table, text, code):
    r = table.map_bank_text(text)
    assert (r.code, r.bank_text) == (code, text)
    assert r.zh == table.get(code).zh


@pytest.mark.parametrize("text", ["系统繁忙请稍后", "ERR-9", "其它错误XYZ"])
def test_unknown_words_map_to_narr_and_are_kept(table, text):
    assert table.map_bank_text(text) == Reason("NARR", table.get("NARR").zh, table.get("NARR").en,
                                               table.get("NARR").explain, bank_text=text)


@pytest.mark.parametrize("text", ["", None, "   "])
def test_no_words_map_to_narr(table, text):
    assert table.map_bank_text(text).code == "NARR"


def test_the_simulator_text_for_each_code_maps_back_to_it(table):
    for reason in table:
        assert table.map_bank_text(table.bank_text_for(reason.code)).code == reason.code


def test_unknown_code_is_a_key_error(table):
    with pytest.raises(KeyError):
        table.get("ZZ99")
    assert "AC04" in table and "ZZ99" not in table


@given(st.text(max_size=60))
def test_any_text_maps_to_some_reason_and_keeps_the_words(text):
    table = _table()
    r = table.map_bank_text(text)
    assert r.code in table and r.bank_text == (text or None)


def _table(cache={}):
    if "t" not in cache:
        with open(CONFIG, "rb") as f:
            cache["t"] = ReasonTable.from_mapping(tomllib.load(f), source="t")
    return cache["t"]


def test_from_mapping_lists_every_problem(raw):
    data = copy.deepcopy(raw)
    data["codes"]["AC04"]["bank_texts"].append("户名不符")  # already BE01
    data["codes"]["ac1"] = {"zh": "x", "en": "x", "explain": "x"}
    del data["codes"]["MD07"]["en"]
    data["codes"]["AM05"]["colour"] = "red"
    data["codes"]["AM04"]["bank_texts"] = "余额不足"
    del data["codes"]["NARR"]
    data["extra"] = 1
    with pytest.raises(ReasonTableError) as info:
        ReasonTable.from_mapping(data, source="config/reason_codes.toml")
    problems = info.value.problems
    expected = [
        "codes.BE01.bank_texts[0]: '户名不符' is already listed under AC04 at codes.AC04.bank_texts[6]",
        "codes.ac1: a reason code is four capital letters",
        "codes.MD07.en: missing or empty text",
        "codes.AM05.colour: unknown key",
        "codes.AM04.bank_texts: expected an array of texts",
        "codes.NARR: missing",
        "extra: unknown key",
    ]
    for e in expected:
        assert any(p.startswith(f"config/reason_codes.toml: {e}") for p in problems), (e, problems)
    assert len(problems) == len(expected)
    assert isinstance(info.value, FormatError)


def test_docstring_examples_run():
    result = doctest.testmod(formats.reasons)
    assert result.attempted > 0 and result.failed == 0
