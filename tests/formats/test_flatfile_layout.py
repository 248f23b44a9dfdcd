"""Layouts are data checked strictly: every problem, with its key path, in one error."""

from __future__ import annotations

import copy

import pytest
from test_flatfile_support import LAYOUT_NAMES, layout

from formats.errors import FormatError
from formats.flatfile import LayoutError, layout_from_mapping

GOOD = {
    "name": "t",
    "instruction": {
        "kind": "fixed",
        "header": {"fields": [
            {"name": "record_type", "type": "str", "start": 1, "length": 1, "value": "1"},
            {"name": "count", "type": "int", "start": 2, "length": 6, "control": "count"},
            {"name": "sum", "type": "fen", "start": 8, "length": 12, "control": "sum", "of": "amount"},
        ]},
        "detail": {"fields": [
            {"name": "record_type", "type": "str", "start": 1, "length": 1, "value": "2"},
            {"name": "sequence", "type": "int", "start": 2, "length": 6},
            {"name": "name", "type": "str", "start": 8, "length": 20},
            {"name": "account", "type": "str", "start": 28, "length": 20},
            {"name": "amount", "type": "fen", "start": 48, "length": 12},
        ]},
    },
}


def test_shipped_layouts_load():
    for name in LAYOUT_NAMES:
        lay = layout(name)
        assert lay.name == name and lay.result is not None
        assert lay.instruction.encoding == "gbk" and lay.instruction.line_ending == "\r\n"


def test_fixed_width_records_have_the_lengths_documented():
    lay = layout("fixed_width")
    assert [r.length for r in lay.instruction.records] == [220, 220, 220]
    assert [r.length for r in lay.result.records] == [190, 190, 190]
    name = lay.instruction.detail.field("name")
    assert (name.start, name.end, name.align, name.pad) == (43, 82, "left", " ")
    amount = lay.instruction.detail.field("amount")
    assert (amount.start, amount.end, amount.align, amount.pad) == (135, 149, "right", "0")


def test_good_mapping_loads():
    lay = layout_from_mapping(GOOD, source="t.toml")
    assert lay.instruction.detail.length == 59 and lay.instruction.header.controls[1].of == "amount"


def _broken(edit) -> dict:
    data = copy.deepcopy(GOOD)
    edit(data)
    return data


def _fields(data, record="detail"):
    return data["instruction"][record]["fields"]


BROKEN = [
    ("unknown type", lambda d: _fields(d)[3].update(type="money"),
     "instruction.detail.fields[3].type: unknown type 'money'"),
    ("unknown key", lambda d: _fields(d)[2].update(colour="red"), "instruction.detail.fields[2].colour: unknown key"),
    ("gap", lambda d: _fields(d)[3].update(start=29), "instruction.detail.fields[3].start: field 'account' starts at 29, expected 28"),
    ("missing length", lambda d: _fields(d)[2].pop("length"), "instruction.detail.fields[2].length: missing"),
    ("unknown name", lambda d: _fields(d)[2].update(name="nickname"), "instruction.detail.fields[2].name: unknown instruction detail field 'nickname'"),
    ("wrong type for name", lambda d: _fields(d)[4].update(type="str"), "instruction.detail.fields[4].type: field 'amount' must be yuan2 or fen"),
    ("sum of nothing", lambda d: _fields(d, "header")[2].update(of="fee"), "instruction.header.fields[2].of: 'fee' is not an amount field"),
    ("control in detail", lambda d: _fields(d)[1].update(control="count"), "instruction.detail.fields[1].control: control totals belong in a header or trailer"),
    ("tag not constant", lambda d: _fields(d)[0].pop("value"), "instruction.detail.fields[0].value: with identify = 'tag'"),
    ("bad encoding", lambda d: d["instruction"].update(encoding="klingon"), "instruction.encoding: unknown encoding 'klingon'"),
    ("bad kind", lambda d: d["instruction"].update(kind="xml"), "instruction.kind: must be 'delimited' or 'fixed'"),
    ("date without format", lambda d: _fields(d)[2].update(type="str", name="id_number", required="no"), "instruction.detail.fields[2].required: expected true/false"),
    ("zero padded text", lambda d: _fields(d)[2].update(pad="0"), "instruction.detail.fields[2].pad: zero padding would change a str value"),
    ("missing detail", lambda d: d["instruction"].pop("detail"), "instruction.detail: missing"),
    ("missing instruction", lambda d: d.pop("instruction"), "instruction: missing"),
    ("result without status", lambda d: d.update(result={"kind": "delimited", "identify": "position",
                                                          "detail": {"fields": [{"name": "sequence", "type": "int"}]}}),
     "result.detail.fields: a result detail needs a 'status' enum field"),
    ("status not a TxStatus", lambda d: d.update(result={"kind": "delimited", "identify": "position", "detail": {"fields": [
        {"name": "sequence", "type": "int"}, {"name": "status", "type": "enum", "values": {"0": "OK"}}]}}),
     "result.detail.fields[1].values.0: status meaning 'OK' is not a TxStatus code"),
]


@pytest.mark.parametrize("case", BROKEN, ids=[c[0] for c in BROKEN])
def test_each_problem_is_named_with_its_key_path(case):
    _, edit, expected = case
    with pytest.raises(LayoutError) as info:
        layout_from_mapping(_broken(edit), source="layouts/t.toml")
    assert any(p.startswith(f"layouts/t.toml: {expected}") for p in info.value.problems), info.value.problems
    assert isinstance(info.value, FormatError) and info.value.source == "layouts/t.toml"


def test_every_problem_is_listed_not_just_the_first():
    def edit(d):
        _fields(d)[3]["type"] = "money"
        _fields(d)[1]["colour"] = "red"
        _fields(d, "header")[2]["of"] = "fee"
        d["instruction"]["encoding"] = "klingon"

    with pytest.raises(LayoutError) as info:
        layout_from_mapping(_broken(edit), source="layouts/rcb_pipe.toml")
    text = str(info.value)
    for path in ("instruction.detail.fields[3].type: unknown type 'money'", "instruction.detail.fields[1].colour",
                 "instruction.encoding", "instruction.header.fields[2].of"):
        assert f"layouts/rcb_pipe.toml: {path}" in text, text
    assert "4 problems in layout" in text


@pytest.mark.parametrize("module", ["formats.flatfile.layout", "formats.flatfile.fields", "formats.flatfile.reader",
                                    "formats.flatfile.writer"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
