"""Write flat files, streaming: instruction files (:func:`write_flat`) and result files (:func:`write_results`).

Each record is rendered and written as soon as its transfer arrives, so memory does not grow with
the file. Nothing is ever truncated or replaced: text that the encoding cannot hold (an emoji in a
name, say), text longer than its field, a delimiter inside text, a float amount — each raises
:class:`~formats.errors.OutboundFormatError` naming source, line, field and value. Counts and sums
a header declares up front are checked after the last record; on any error the output written so
far is incomplete and must be discarded by the caller.

>>> import io, datetime as dt
>>> from decimal import Decimal
>>> from formats.flatfile.layout import layout_from_mapping
>>> layout = layout_from_mapping({"name": "mini", "instruction": {"kind": "delimited", "identify": "position", "detail": {"fields": [
...     {"name": "sequence", "type": "int"}, {"name": "name", "type": "str"},
...     {"name": "amount", "type": "yuan2"}, {"name": "account", "type": "str"}]}}}, source="mini")
>>> hdr = PaymentHeader("M1", dt.datetime(2026, 11, 2, 9), "P1", dt.date(2026, 11, 3), "县财政局",
...                     "县财政局", "001", "B001", 1, Decimal("120.00"))
>>> out = io.BytesIO()
>>> write_flat(out, layout, hdr, [CreditTransfer("E1", Decimal("120.00"), "张三", "6217001", "B001", "")], unit_code="U1")
WriteResult(count=1, sum=Decimal('120.00'), bytes=23)
>>> out.getvalue().decode("gbk")
'1|张三|120.00|6217001\\r\\n'
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO, Iterable, Iterator, Mapping

from formats.errors import OutboundFormatError
from formats.flatfile.fields import FieldProblem, render_field
from formats.flatfile.layout import FileLayout, FileSpec, RecordSpec
from formats.flatfile.records import (
    ResultFileHeader,
    ResultRow,
    instruction_edge_values,
    result_edge_values,
    result_row_values,
    transfer_values,
)
from formats.model import CreditTransfer, PaymentHeader

__all__ = ["WriteResult", "write_flat", "write_results", "render_record"]


@dataclass(frozen=True)
class WriteResult:
    """What was written: detail ``count``, ``sum`` of the detail amounts, total ``bytes``."""

    count: int
    sum: Decimal
    bytes: int


def render_record(rec: RecordSpec, values: Mapping[str, Any], spec: FileSpec, *, line: int, source: str) -> bytes:
    """One record's bytes, without the line ending.

    :raises OutboundFormatError: a field cannot be rendered (names source, line, field, value).
    """
    fixed = spec.kind == "fixed"
    parts = []
    for f in rec.fields:
        value = values.get(f.name)
        try:
            parts.append(render_field(f, value, spec.encoding, fixed=fixed, delimiter=spec.delimiter))
        except FieldProblem as e:
            raise OutboundFormatError(str(e), source=source, line=line, field=f.name, value=value) from None
    data = b"".join(parts) if fixed else spec.delimiter.encode("ascii").join(parts)
    if len(data) > spec.max_line_bytes:
        raise OutboundFormatError(f"record is {len(data)} bytes, the layout allows {spec.max_line_bytes}",
                                  source=source, line=line)
    return data


def _spec(layout: FileLayout | FileSpec, role: str) -> FileSpec:
    spec = getattr(layout, role) if isinstance(layout, FileLayout) else layout
    if spec is None or spec.role != role:
        raise ValueError(f"layout {getattr(layout, 'name', layout)!r} has no {role} file")
    return spec


def _write(out: BinaryIO, spec: FileSpec, edge: dict[str, Any], declared_count: int, declared_sum: Decimal,
           rows: Iterator[dict[str, Any]], source: str) -> WriteResult:
    eol = spec.line_ending.encode("ascii")
    line = 0
    nbytes = 0

    def emit(rec: RecordSpec, values: Mapping[str, Any]) -> None:
        nonlocal line, nbytes
        line += 1
        data = render_record(rec, values, spec, line=line, source=source) + eol
        out.write(data)
        nbytes += len(data)

    def controls(rec: RecordSpec, count: int, sums: Mapping[str, Decimal]) -> dict[str, Any]:
        values = dict(edge)
        for f in rec.controls:
            values[f.name] = count if f.control == "count" else sums.get(f.of, Decimal("0.00"))
        return values

    declared_sums = {f.of: declared_sum for r in spec.records for f in r.controls if f.control == "sum"}
    if spec.header is not None:
        emit(spec.header, controls(spec.header, declared_count, declared_sums))
    count = 0
    sums: dict[str, Decimal] = {}
    sum_fields = {f.of for r in spec.records for f in r.controls if f.control == "sum"} | {"amount"}
    for values in rows:
        count += 1
        emit(spec.detail, values)
        for name in sum_fields:
            v = values.get(name)
            if v is not None:
                sums[name] = sums.get(name, Decimal("0.00")) + v
    if spec.trailer is not None:
        emit(spec.trailer, controls(spec.trailer, count, sums))
    if spec.header is not None:
        for f in spec.header.controls:
            declared = declared_count if f.control == "count" else declared_sum
            actual = count if f.control == "count" else sums.get(f.of, Decimal("0.00"))
            if declared != actual:
                raise OutboundFormatError(
                    f"header declared {f.control} {declared} but {actual} was written; discard this file",
                    source=source, line=1, field=f.name, value=declared)
    return WriteResult(count=count, sum=sums.get("amount", Decimal("0.00")), bytes=nbytes)


def write_flat(out: BinaryIO, layout: FileLayout | FileSpec, header: PaymentHeader,
               transactions: Iterable[CreditTransfer], *, unit_code: str, source: str = "<output>") -> WriteResult:
    """Write an instruction file: header, one detail per transfer (``sequence`` 1, 2, ...), trailer.

    :param out: binary file object to write to.
    :param layout: a :class:`FileLayout` (its ``instruction`` file is used) or an instruction :class:`FileSpec`.
    :param header: count and sum declared in a header are ``number_of_transactions`` and ``control_sum``.
    :param transactions: any iterable; consumed once.
    :param unit_code: the paying unit's code for the ``unit_code`` header field.
    :param source: the output's name for error messages.
    :raises OutboundFormatError: a value cannot be written as the layout says, or the declared totals
        disagree with the transfers written.
    """
    spec = _spec(layout, "instruction")
    rows = (transfer_values(tx, i) for i, tx in enumerate(transactions, start=1))
    return _write(out, spec, instruction_edge_values(header, unit_code), header.number_of_transactions,
                  header.control_sum, rows, source)


def write_results(out: BinaryIO, layout: FileLayout | FileSpec, header: ResultFileHeader,
                  rows: Iterable[ResultRow], *, source: str = "<output>") -> WriteResult:
    """Write a result file (what a bank sends back; used by the bank simulator).

    :param layout: a :class:`FileLayout` (its ``result`` file is used) or a result :class:`FileSpec`.
    :param header: date, unit code and the count/sum declared up front.
    :param rows: one :class:`ResultRow` per answered transfer; ``status`` must be one of the
        meanings of the layout's status enum, ``reason_text`` is written as given.
    :raises OutboundFormatError: as for :func:`write_flat`.
    """
    spec = _spec(layout, "result")
    return _write(out, spec, result_edge_values(header), header.number_of_transactions, header.control_sum,
                  (result_row_values(r) for r in rows), source)
