"""Properties: model -> bytes -> model for both layouts; any bytes -> records or FormatError, nothing else."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_flatfile_support import GOLDEN_DIR, LAYOUT_NAMES, UNIT, layout, payment_header, reasons

from formats.errors import FormatError
from formats.flatfile import ResultFileHeader, ResultRow, check_flat, read_flat, write_flat, write_results
from formats.model import CreditTransfer, TxStatus
from formats.money import from_fen

# Common surname and given-name characters (all in GB 2312, hence GBK), and the middle dot of minority names.
COMMON = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤明华建国英芳秀兰玉珍桂霞丽军伟强磊洋勇艳娟涛超斌辉敏静燕欧阳娜古买提"
names = st.text(alphabet=COMMON, min_size=1, max_size=10).map(lambda s: s if len(s) < 4 else s[:2] + "·" + s[2:])
accounts = st.text(alphabet="0123456789", min_size=6, max_size=19)
amounts = st.integers(min_value=1, max_value=10**11).map(from_fen)
refs = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=35).filter(lambda s: s.strip("-") == s)
remarks = st.text(alphabet=COMMON + "0123456789- ", max_size=25).map(str.strip)
id_numbers = st.none() | st.from_regex(r"[1-6][0-9]{16}[0-9X]", fullmatch=True)

transfer = st.builds(CreditTransfer, end_to_end_id=refs, amount=amounts, creditor_name=names, creditor_account=accounts,
                     creditor_bank_code=st.just("RCB001"), remittance=remarks, id_number=id_numbers)


@pytest.mark.parametrize("name", LAYOUT_NAMES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(txs=st.lists(transfer, max_size=8))
def test_instruction_round_trip(name, txs):
    out = io.BytesIO()
    written = write_flat(out, layout(name), payment_header(txs), txs, unit_code=UNIT)
    got = read_flat(out.getvalue(), layout(name).instruction, source="p", bank_code="RCB001")
    by_sequence = layout(name).instruction.key == "sequence"
    expected = [dataclasses.replace(t, end_to_end_id=str(i)) if by_sequence else t for i, t in enumerate(txs, 1)]
    assert list(got.records) == expected
    assert (written.count, written.sum) == (len(txs), sum((t.amount for t in txs), Decimal("0.00")))


outcomes = st.sampled_from([(TxStatus.ACCEPTED_SETTLEMENT_COMPLETED, "交易成功"), (TxStatus.REJECTED, "户名不符"),
                            (TxStatus.REJECTED, "账户冻结"), (TxStatus.REJECTED, None), (TxStatus.REJECTED, "系统繁忙")])


@pytest.mark.parametrize("name", LAYOUT_NAMES)
@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(transfer, outcomes), max_size=6))
def test_result_round_trip(name, rows):
    result_rows = [ResultRow(i, tx, status, text) for i, (tx, (status, text)) in enumerate(rows, 1)]
    header = ResultFileHeader(dt.date(2026, 11, 4), UNIT, len(rows), sum((r.transfer.amount for r in result_rows),
                                                                         Decimal("0.00")))
    out = io.BytesIO()
    write_results(out, layout(name), header, result_rows)
    got = read_flat(out.getvalue(), layout(name).result, source="p", reasons=reasons())
    by_sequence = layout(name).result.key == "sequence"
    for row, line in zip(result_rows, got.records, strict=True):
        assert line.original_end_to_end_id == (str(row.sequence) if by_sequence else row.transfer.end_to_end_id)
        assert (line.status, line.reason_text, line.amount) == (row.status, row.reason_text, row.transfer.amount)
        if row.status.is_rejection:
            assert line.reason_code == reasons().map_bank_text(row.reason_text).code


SPECS = [(n, k) for n in LAYOUT_NAMES for k in ("instruction", "result")]


def _never_anything_but_format_errors(data: bytes, name: str, kind: str) -> None:
    spec = getattr(layout(name), kind)
    try:
        read_flat(data, spec, source="fuzz", reasons=reasons())
    except FormatError:
        pass
    problems = check_flat(data, spec, source="fuzz", reasons=reasons())
    assert all(isinstance(p, FormatError) and p.source == "fuzz" for p in problems)


@pytest.mark.parametrize("name,kind", SPECS)
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=600))
def test_any_bytes_give_records_or_format_errors(name, kind, data):
    _never_anything_but_format_errors(data, name, kind)


@pytest.mark.parametrize("name,kind", SPECS)
@settings(max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=3)), min_size=1, max_size=4))
def test_golden_files_with_bytes_changed_give_records_or_format_errors(name, kind, edits):
    data = bytearray((GOLDEN_DIR / f"{name}_{kind}.txt").read_bytes())
    for at, new in edits:
        at %= len(data) + 1
        data[at:at + len(new)] = new
    _never_anything_but_format_errors(bytes(data), name, kind)
