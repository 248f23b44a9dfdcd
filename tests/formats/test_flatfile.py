"""Flat files end to end: round trips, golden files, and every bad case naming source, line, field, value."""

from __future__ import annotations

import dataclasses
import io
import os
from decimal import Decimal

import pytest
from test_flatfile_support import (
    GOLDEN_DIR,
    LAYOUT_NAMES,
    UNIT,
    layout,
    payment_header,
    reasons,
    result_header,
    result_rows,
    transfers,
)

from formats.errors import (
    ControlTotalMismatch,
    FormatError,
    HostileInput,
    MalformedInput,
    OutboundFormatError,
    SchemaViolation,
)
from formats.flatfile import check_flat, open_flat, read_flat, write_flat, write_results
from formats.model import CreditTransfer, TransactionStatusLine, TxStatus


def instruction_bytes(name: str, txs=None, header=None) -> bytes:
    txs = transfers() if txs is None else txs
    out = io.BytesIO()
    write_flat(out, layout(name), header or payment_header(txs), txs, unit_code=UNIT, source="out.txt")
    return out.getvalue()


def result_bytes(name: str) -> bytes:
    out = io.BytesIO()
    write_results(out, layout(name), result_header(), result_rows(), source="out.txt")
    return out.getvalue()


def expected_transfers(name: str) -> list[CreditTransfer]:
    """What reading our own instruction file gives back: with key = sequence, the sequence is the id."""
    txs = transfers()
    if layout(name).instruction.key == "sequence":
        return [dataclasses.replace(t, end_to_end_id=str(i)) for i, t in enumerate(txs, start=1)]
    return txs


def expected_status_lines(name: str) -> list[TransactionStatusLine]:
    by_sequence = layout(name).result.key == "sequence"
    return [
        TransactionStatusLine(str(r.sequence) if by_sequence else r.transfer.end_to_end_id, r.status,
                              reason_code=code, reason_text=r.reason_text, amount=r.transfer.amount,
                              creditor_account=r.transfer.creditor_account)
        for r, code in zip(result_rows(), (None, "BE01", "AC04"))
    ]


# --------------------------------------------------------------------------- round trips and golden files


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_instruction_round_trip(name):
    data = instruction_bytes(name)
    got = read_flat(data, layout(name).instruction, source="in.txt", bank_code="RCB001")
    assert list(got.records) == expected_transfers(name)
    assert got.header["date"] == payment_header().requested_execution_date
    assert got.header["unit_code"] == UNIT


@pytest.mark.parametrize("name", LAYOUT_NAMES)
def test_result_round_trip_maps_bank_words_to_reason_codes(name):
    got = read_flat(result_bytes(name), layout(name).result, source="res.txt", reasons=reasons())
    assert list(got.records) == expected_status_lines(name)
    assert [r.line for r in got.records] == [2, 3, 4]


@pytest.mark.parametrize("name,kind", [(n, k) for n in LAYOUT_NAMES for k in ("instruction", "result")])
def test_golden(name, kind):
    data = instruction_bytes(name) if kind == "instruction" else result_bytes(name)
    path = GOLDEN_DIR / f"{name}_{kind}.txt"
    if os.environ.get("YKT_REGEN_GOLDEN"):
        path.write_bytes(data)
    assert data == path.read_bytes()


def test_golden_rcb_pipe_lines_are_what_the_bank_expects():
    lines = (GOLDEN_DIR / "rcb_pipe_instruction.txt").read_bytes().decode("gbk").split("\r\n")
    assert lines[0] == "H|20261103|500101001|3|1754.57"
    assert lines[2] == "D|2|阿依古丽·买买提|1234.56|6217001234567891|01|65010119850505002X|耕地地力保护补贴 2026-11"
    assert lines[3] == "D|3|欧阳娜娜|0.01|101001|01||"
    assert lines[4] == ""  # the last line ends with CRLF too


def test_golden_fixed_width_positions_match_the_layout_comments():
    lines = (GOLDEN_DIR / "fixed_width_instruction.txt").read_bytes().split(b"\r\n")
    assert [len(x) for x in lines] == [220, 220, 220, 220, 220, 0]
    d2 = lines[2]
    assert d2[0:1] == b"2" and d2[1:7] == b"000002"
    assert d2[7:42] == b"YKT-B7-000002".ljust(35)
    assert d2[42:82] == "阿依古丽·买买提".encode("gbk").ljust(40)  # 8 characters, 16 GBK bytes
    assert d2[134:149] == b"000000000123456"  # fen, right-aligned, zero-padded
    assert lines[4][1:9] == b"00000003" and lines[4][9:27] == b"000000000000175457"


def test_reader_streams_header_first_then_details():
    stream = io.BytesIO(instruction_bytes("fixed_width"))
    reader = open_flat(stream, layout("fixed_width").instruction, source="in.txt")
    assert reader.header["count"] == 3 and reader.trailer is None
    first = next(iter(reader))
    assert first.end_to_end_id == "YKT-B7-000001"


def test_writer_streams_each_record_before_pulling_the_next():
    out = io.BytesIO()
    txs = transfers()

    def pull():
        for i, t in enumerate(txs):
            assert out.getvalue().count(b"\r\n") == 1 + i  # header + every earlier detail already written
            yield t

    result = write_flat(out, layout("rcb_pipe"), payment_header(), pull(), unit_code=UNIT)
    assert (result.count, result.sum, result.bytes) == (3, Decimal("1754.57"), len(out.getvalue()))


# --------------------------------------------------------------------------- bad inbound files


def _replace_line(data: bytes, index: int, new: bytes) -> bytes:
    lines = data.split(b"\r\n")
    lines[index] = new
    return b"\r\n".join(lines)


def _fixed_detail_with_cut_name(data: bytes) -> bytes:
    line = data.split(b"\r\n")[1]
    return _replace_line(data, 1, line[:42] + b"a" + "张".encode("gbk") * 20 + line[83:])


RCB = instruction_bytes("rcb_pipe")
FIX = instruction_bytes("fixed_width")
RCB_RES = result_bytes("rcb_pipe")

# (id, layout, kind, bytes, error class, line, field, value, words in the message)
BAD_INBOUND = [
    ("trailer-count", "fixed_width", "instruction", _replace_line(FIX, 4, b"900000004" + FIX.split(b"\r\n")[4][9:]),
     ControlTotalMismatch, 5, "count", 4, "declares 4 detail records but the file has 3"),
    ("trailer-sum", "fixed_width", "instruction",
     _replace_line(FIX, 4, FIX.split(b"\r\n")[4][:9] + b"000000000000175458" + FIX.split(b"\r\n")[4][27:]),
     ControlTotalMismatch, 5, "sum", Decimal("1754.58"), "add up to 1754.57"),
    ("header-count", "rcb_pipe", "instruction", RCB.replace(b"|3|1754.57", b"|2|1754.57"),
     ControlTotalMismatch, 1, "count", 2, "declares 2"),
    ("header-sum", "rcb_pipe", "instruction", RCB.replace(b"|3|1754.57", b"|3|1754.50"),
     ControlTotalMismatch, 1, "sum", Decimal("1754.50"), "add up to 1754.57"),
    ("result-header-sum", "rcb_pipe", "result", RCB_RES.replace(b"|3|1754.57", b"|3|1000.00"),
     ControlTotalMismatch, 1, "sum", Decimal("1000.00"), "add up to 1754.57"),
    ("invalid-gbk", "rcb_pipe", "instruction", RCB.replace("张三".encode("gbk"), b"\xff\xfe\xfd"),
     MalformedInput, 2, "name", b"\xff\xfe", "invalid gbk bytes at byte offset 4"),
    ("invalid-gbk-fixed", "fixed_width", "instruction", FIX.replace("欧阳".encode("gbk"), b"\x81\x20\x20\x20"),
     MalformedInput, 4, "name", b"\x81\x20", "byte offset 42"),
    ("truncated-no-crlf", "rcb_pipe", "instruction", RCB[:-2],
     MalformedInput, 4, "line_ending", "D|3|欧阳娜娜|0.01|101001|01||", "no line ending (CRLF"),
    ("truncated-no-trailer", "fixed_width", "instruction", b"\r\n".join(FIX.split(b"\r\n")[:4]) + b"\r\n",
     MalformedInput, 5, "record_type", b"", "without a trailer"),
    ("truncated-mid-line", "fixed_width", "instruction", FIX[:300],
     MalformedInput, 2, "line_ending", FIX[222:300].decode("gbk"), "no line ending"),
    ("lf-only", "rcb_pipe", "instruction", RCB.replace(b"\r\nD|2", b"\nD|2"),
     MalformedInput, 2, "line_ending", None, "LF only"),
    ("field-count", "rcb_pipe", "instruction", RCB.replace(b"|01|500101199001011234", b"|500101199001011234"),
     MalformedInput, 2, "remark", None, "has 7 fields, the layout says 8"),
    ("bad-amount", "rcb_pipe", "instruction", RCB.replace(b"|520.00|", b"|52O.00|"),
     MalformedInput, 2, "amount", "52O.00", "not an amount"),
    ("bad-amount-3-decimals", "rcb_pipe", "instruction", RCB.replace(b"|520.00|", b"|520.001|"),
     MalformedInput, 2, "amount", "520.001", "two decimals"),
    ("bad-date", "rcb_pipe", "instruction", RCB.replace(b"H|20261103|", b"H|20261131|"),
     MalformedInput, 1, "date", "20261131", "not a date"),
    ("bad-status", "rcb_pipe", "result", RCB_RES.replace(b"|0|", b"|7|"),
     MalformedInput, 2, "status", "7", "unknown value"),
    ("stray-header", "rcb_pipe", "instruction", RCB + b"H|20261103|500101001|3|1754.57\r\n",
     SchemaViolation, 5, "record_type", "H", "stray header"),
    ("unknown-record", "rcb_pipe", "instruction", RCB.replace(b"\r\nD|2|", b"\r\nX|2|"),
     SchemaViolation, 3, "record_type", "X", "unknown record type"),
    ("after-trailer", "fixed_width", "instruction", FIX + FIX.split(b"\r\n")[1] + b"\r\n",
     SchemaViolation, 6, "record_type", "2", "after the trailer"),
    ("missing-header", "rcb_pipe", "instruction", RCB.split(b"\r\n", 1)[1],
     MalformedInput, 1, "record_type", "D", "missing header"),
    ("sequence-gap", "rcb_pipe", "instruction", RCB.replace(b"D|2|", b"D|5|"),
     SchemaViolation, 3, "sequence", 5, "expected 2"),
    ("record-length", "fixed_width", "instruction", _replace_line(FIX, 2, FIX.split(b"\r\n")[2][:-1]),
     MalformedInput, 3, "filler", 219, "219 bytes, the layout says 220"),
    ("cut-character", "fixed_width", "instruction", _fixed_detail_with_cut_name(FIX),
     MalformedInput, 2, "name", None, "cut a character in two"),
    ("empty-file", "rcb_pipe", "instruction", b"",
     MalformedInput, 1, None, b"", "empty file"),
    ("overlong-line", "rcb_pipe", "instruction", RCB + b"D|4|" + b"x" * 5000 + b"\r\n",
     HostileInput, 5, None, None, "longer than 4096 bytes"),
]


@pytest.mark.parametrize("case", BAD_INBOUND, ids=[c[0] for c in BAD_INBOUND])
def test_bad_inbound_file_names_source_line_field_value(case):
    _, name, kind, data, error, line, field, value, words = case
    spec = getattr(layout(name), kind)
    with pytest.raises(error) as info:
        read_flat(data, spec, source="bank/in.txt", reasons=reasons())
    e = info.value
    assert (e.source, e.line) == ("bank/in.txt", line), str(e)
    assert e.field == field, str(e)
    if value is not None:
        assert e.value == value, str(e)
    assert words in e.message, str(e)
    assert str(e).startswith(f"bank/in.txt:{line}")
    # collecting finds the same problem first, and never raises
    problems = check_flat(data, spec, source="bank/in.txt", reasons=reasons())
    assert problems and type(problems[0]) is error and problems[0].line == line


def test_collect_mode_lists_every_row_problem_and_keeps_the_good_rows():
    data = RCB.replace(b"|520.00|", b"|52O.00|").replace(b"D|3|", b"D|3|\xff").replace(b"|3|1754.57", b"|4|1754.57")
    got = read_flat(data, layout("rcb_pipe").instruction, source="in.txt", collect=True)
    assert [(type(p).__name__, p.line, p.field) for p in got.problems] == [
        ("MalformedInput", 2, "amount"),
        ("MalformedInput", 4, "name"),
        ("ControlTotalMismatch", 1, "count"),  # the sum is not checked: two rows could not be read
    ]
    assert [t.creditor_name for t in got.records] == ["阿依古丽·买买提"]


def test_collect_mode_reports_all_bad_fields_of_one_row():
    data = RCB.replace(b"D|1|" + "张三".encode("gbk") + b"|520.00|", b"D|1||5x|")
    problems = check_flat(data, layout("rcb_pipe").instruction, source="in.txt")
    assert [(p.line, p.field) for p in problems] == [(2, "name"), (2, "amount")]


def test_good_file_has_no_problems():
    assert check_flat(FIX, layout("fixed_width").instruction, source="in.txt") == []


def test_unknown_bank_reason_text_maps_to_narr_and_keeps_the_words():
    data = RCB_RES.replace("户名不符".encode("gbk"), "核心系统返回错误99".encode("gbk"))
    data = data.replace(b"|3|1754.57", b"|3|1754.57")
    got = read_flat(data, layout("rcb_pipe").result, source="res.txt", reasons=reasons())
    line = got.records[1]
    assert (line.status, line.reason_code, line.reason_text) == (TxStatus.REJECTED, "NARR", "核心系统返回错误99")


# --------------------------------------------------------------------------- bad outbound data: refused, never truncated


def _tx(**changes) -> CreditTransfer:
    return dataclasses.replace(transfers()[1], **changes)


BAD_OUTBOUND = [
    # (id, layout, transfer, line, field, words)
    ("name-too-long-fixed", "fixed_width", _tx(creditor_name="阿依古丽·买买提" + "甲" * 13), 3, "name",
     "too long: 42 bytes in gbk, the field holds 40"),
    ("account-too-long-fixed", "fixed_width", _tx(creditor_account="6" * 33), 3, "account", "too long: 33 bytes"),
    ("name-too-long-pipe", "rcb_pipe", _tx(creditor_name="张" * 31), 3, "name", "too long: 62 bytes"),
    ("emoji-name", "rcb_pipe", _tx(creditor_name="张三😀"), 3, "name", "'😀' (U+1F600) cannot be encoded in gbk"),
    ("emoji-name-fixed", "fixed_width", _tx(creditor_name="😀"), 3, "name", "cannot be encoded in gbk"),
    ("non-gbk-hanzi", "rcb_pipe", _tx(creditor_name="王𬌗"), 3, "name", "cannot be encoded in gbk"),
    ("delimiter-in-remark", "rcb_pipe", _tx(remittance="补贴|2026"), 3, "remark", "contains the delimiter"),
    ("float-amount", "rcb_pipe", _tx(amount=12.5), 3, "amount", "amounts must be Decimal"),
    ("fraction-of-fen", "fixed_width", _tx(amount=Decimal("1.005")), 3, "amount", "more than two decimal places"),
    ("negative-amount", "rcb_pipe", _tx(amount=Decimal("-1.00")), 3, "amount", "negative amount"),
    ("padded-name", "fixed_width", _tx(creditor_name=" 张三"), 3, "name", "leading or trailing whitespace"),
    ("empty-account", "rcb_pipe", _tx(creditor_account=""), 3, "account", "required field is empty"),
    ("newline-in-name", "rcb_pipe", _tx(creditor_name="张\r\n三"), 3, "name", "control character"),
]


@pytest.mark.parametrize("case", BAD_OUTBOUND, ids=[c[0] for c in BAD_OUTBOUND])
def test_writer_refuses_what_it_cannot_write_faithfully(case):
    _, name, bad, line, field, words = case
    txs = [transfers()[0], bad]
    header = dataclasses.replace(payment_header(transfers()[:2]))
    with pytest.raises(OutboundFormatError) as info:
        write_flat(io.BytesIO(), layout(name), header, txs, unit_code=UNIT, source="out/batch7.txt")
    e = info.value
    assert (e.source, e.line, e.field) == ("out/batch7.txt", line, field), str(e)
    assert e.value == getattr(bad, {"name": "creditor_name", "account": "creditor_account",
                                    "remark": "remittance", "amount": "amount"}[field])
    assert words in e.message, str(e)


@pytest.mark.parametrize("name", LAYOUT_NAMES)
@pytest.mark.parametrize("field,change", [("count", {"number_of_transactions": 4}),
                                          ("sum", {"control_sum": Decimal("1754.56")})])
def test_writer_checks_what_the_header_declared(name, field, change):
    header = dataclasses.replace(payment_header(), **change)
    with pytest.raises(OutboundFormatError) as info:
        write_flat(io.BytesIO(), layout(name), header, transfers(), unit_code=UNIT, source="out.txt")
    assert (info.value.line, info.value.field) == (1, field)
    assert "discard" in info.value.message


def test_writer_refuses_a_unit_code_too_long_for_the_header():
    with pytest.raises(OutboundFormatError) as info:
        write_flat(io.BytesIO(), layout("fixed_width"), payment_header(), transfers(), unit_code="5" * 21)
    assert (info.value.line, info.value.field, info.value.value) == (1, "unit_code", "5" * 21)


def test_result_writer_refuses_a_status_the_layout_cannot_say():
    rows = result_rows()
    rows[0] = dataclasses.replace(rows[0], status=TxStatus.PENDING)
    with pytest.raises(OutboundFormatError) as info:
        write_results(io.BytesIO(), layout("rcb_pipe"), result_header(rows), rows, source="res.txt")
    assert (info.value.line, info.value.field, info.value.value) == (2, "status", "PDNG")


def test_errors_are_format_errors_and_value_errors():
    assert issubclass(OutboundFormatError, FormatError) and issubclass(MalformedInput, ValueError)
