"""Read flat files, streaming: a header, then an iterator of detail records, then the trailer checks.

:func:`open_flat` returns a :class:`FlatReader`: its ``header`` (field values by name) is read at
once; iterating yields one model per detail line — :class:`~formats.model.CreditTransfer` for an
instruction file (the bank simulator reads what we send), :class:`~formats.model.TransactionStatusLine`
for a result file (the bank's reason text mapped through the reason table). After the last line
the declared counts and sums are checked.

Every problem is a :class:`~formats.errors.InboundFormatError` naming source, line, field and value:

* :class:`~formats.errors.MalformedInput` — bytes invalid in the encoding (with the byte offset),
  wrong field count or record length, a bad amount/date/number, a missing header or trailer, a
  last line without its line ending (truncated file), a line longer than ``max_line_bytes``;
* :class:`~formats.errors.SchemaViolation` — an unknown record type, a stray header or a record
  after the trailer, a sequence number out of order;
* :class:`~formats.errors.ControlTotalMismatch` — a declared count or sum disagreeing with the details.

Fail-fast (default) raises the first problem; ``collect=True`` keeps going, skips the rows that
cannot be read and gathers every problem in ``reader.problems`` (see also :func:`check_flat`).

>>> from formats.flatfile.layout import layout_from_mapping
>>> layout = layout_from_mapping({"name": "mini", "instruction": {"kind": "delimited", "identify": "position", "detail": {"fields": [
...     {"name": "sequence", "type": "int"}, {"name": "name", "type": "str"},
...     {"name": "amount", "type": "yuan2"}, {"name": "account", "type": "str"}]}}}, source="mini")
>>> [t.amount for t in read_flat("1|张三|120.00|6217001\\r\\n".encode("gbk"), layout.instruction, source="a.txt").records]
[Decimal('120.00')]
>>> read_flat(b"1|x|12.5|6217001\\r\\n", layout.instruction, source="a.txt")
Traceback (most recent call last):
...
formats.errors.MalformedInput: a.txt:1: amount='12.5': not an amount in yuan with two decimals (e.g. 1234.50)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, BinaryIO, Iterator, Mapping

from formats.errors import (
    ControlTotalMismatch,
    FormatError,
    HostileInput,
    MalformedInput,
    SchemaViolation,
)
from formats.flatfile.fields import FieldProblem, parse_field, unpad
from formats.flatfile.layout import FileSpec, RecordSpec
from formats.flatfile.records import status_line_from_values, transfer_from_values
from formats.model import CreditTransfer, TransactionStatusLine
from formats.reasons import ReasonTable

__all__ = ["FlatReader", "FlatContents", "open_flat", "read_flat", "check_flat"]

Record = CreditTransfer | TransactionStatusLine
_CHUNK = 65536


@dataclass(frozen=True)
class FlatContents:
    """A whole flat file read into memory (small files and tests): header and trailer field values,
    the detail records, and the problems found (empty unless read with ``collect=True``)."""

    header: Mapping[str, Any] | None
    records: tuple[Record, ...]
    trailer: Mapping[str, Any] | None
    problems: tuple[FormatError, ...] = ()


class FlatReader:
    """Streaming reader of one flat file; build it with :func:`open_flat`.

    ``header`` / ``trailer``: field values by name (``None`` when the layout has none, or it could
    not be read). ``count`` / ``sum``: detail lines seen and the sum of the amounts read.
    ``problems``: everything found so far when collecting.
    """

    def __init__(self, stream: BinaryIO, spec: FileSpec, *, source: str, collect: bool = False,
                 reasons: ReasonTable | None = None, bank_code: str = "") -> None:
        self.spec = spec
        self.source = source
        self.collect = collect
        self.reasons = reasons
        self.bank_code = bank_code
        self.header: Mapping[str, Any] | None = None
        self.trailer: Mapping[str, Any] | None = None
        self.problems: list[FormatError] = []
        self.count = 0
        self.sum = Decimal("0.00")
        self._header_line: int | None = None
        self._row_failures = 0
        self._sums: dict[str, Decimal] = {}
        self._sum_fields = {f.of for r in spec.records for f in r.controls if f.control == "sum"} | {"amount"}
        self._stream = stream
        self._eol = spec.line_ending.encode("ascii")
        self._lines = self._raw_lines()
        self._pending: tuple[int, bytes] | None = None
        self._last_line = 0
        self._started = False
        self._read_header()

    # ----------------------------------------------------------------- problems

    def _report(self, err: FormatError) -> None:
        if not self.collect:
            raise err
        self.problems.append(err)

    # ----------------------------------------------------------------- lines

    def _raw_lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, bytes without the line ending); line-ending problems reported on the way."""
        limit = self.spec.max_line_bytes + len(self._eol)
        lineno = 0
        while True:
            raw = self._stream.readline(limit)
            if not raw:
                return
            lineno += 1
            if not raw.endswith(b"\n"):
                if len(raw) >= limit:
                    self._report(HostileInput(f"line longer than {self.spec.max_line_bytes} bytes", source=self.source,
                                              line=lineno, value=f"{len(raw)}+ bytes"))
                    while raw and not raw.endswith(b"\n"):  # collecting: skip the rest of the line
                        raw = self._stream.readline(_CHUNK)
                    continue
                self._report(MalformedInput(
                    f"truncated: the last line has no line ending ({self._ending_name()} expected)",
                    source=self.source, line=lineno, field="line_ending", value=self._preview(raw)))
                yield lineno, raw
                return
            if self._eol == b"\r\n":
                if not raw.endswith(b"\r\n"):
                    self._report(MalformedInput("line ends with LF only; the layout says CRLF", source=self.source,
                                                line=lineno, field="line_ending", value=self._preview(raw[:-1])))
                    yield lineno, raw[:-1]
                    continue
                yield lineno, raw[:-2]
            else:
                yield lineno, raw[:-1]

    def _preview(self, raw: bytes) -> str:
        return _preview(raw, self.spec.encoding)

    def _tag(self, raw: bytes) -> str:
        """The record-type text of a line, for messages."""
        spec = self.spec
        if spec.kind == "fixed":
            f = spec.detail.fields[0]
            return self._preview(raw[f.start - 1:f.end])
        return self._preview(raw.split(spec.delimiter.encode("ascii"), 1)[0][:20])

    def _ending_name(self) -> str:
        return "CRLF" if self._eol == b"\r\n" else "LF"

    def _next(self) -> tuple[int, bytes] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        item = next(self._lines, None)
        if item is not None:
            self._last_line = item[0]
        return item

    def _peek(self) -> tuple[int, bytes] | None:
        if self._pending is None:
            self._pending = next(self._lines, None)
            if self._pending is not None:
                self._last_line = self._pending[0]
        return self._pending

    # ----------------------------------------------------------------- records

    def _kind_of(self, raw: bytes, *, is_last: bool) -> RecordSpec | None:
        spec = self.spec
        if spec.identify == "position":
            return spec.trailer if (is_last and spec.trailer is not None) else spec.detail
        if spec.kind == "fixed":
            f = spec.detail.fields[0]
            tag = raw[f.start - 1:f.end]
        else:
            tag = raw.split(spec.delimiter.encode("ascii"), 1)[0]
        for rec in spec.records:
            if tag.strip(b" ") == rec.tag.encode("ascii", "replace"):
                return rec
        return None

    def _parse(self, rec: RecordSpec, raw: bytes, lineno: int) -> dict[str, Any] | None:
        """Field values of one record, or None (problems reported)."""
        spec = self.spec
        src = self.source
        try:
            text = raw.decode(spec.encoding)
        except UnicodeDecodeError as e:
            self._report(MalformedInput(
                f"invalid {spec.encoding} bytes at byte offset {e.start} of the line",
                source=src, line=lineno, field=self._field_at(rec, raw, e.start), value=raw[e.start:e.end + 1]))
            return None
        texts: list[tuple[str, str]] = []
        if spec.kind == "fixed":
            if len(raw) != rec.length:
                self._report(MalformedInput(f"{rec.kind} record is {len(raw)} bytes, the layout says {rec.length}",
                                            source=src, line=lineno, field=self._field_at(rec, raw, len(raw)),
                                            value=len(raw)))
                return None
            for f in rec.fields:
                chunk = raw[f.start - 1:f.end]
                try:
                    texts.append((f.name, unpad(f, chunk.decode(spec.encoding))))
                except UnicodeDecodeError:
                    self._report(MalformedInput(
                        f"bytes {f.start}-{f.end} cut a character in two (field lengths are in {spec.encoding} bytes)",
                        source=src, line=lineno, field=f.name, value=chunk))
                    return None
        else:
            parts = text.split(spec.delimiter)
            if len(parts) != len(rec.fields):
                where = rec.fields[len(parts)].name if len(parts) < len(rec.fields) else f"(extra field {len(parts)})"
                self._report(MalformedInput(f"{rec.kind} record has {len(parts)} fields, the layout says "
                                            f"{len(rec.fields)}", source=src, line=lineno, field=where,
                                            value=self._preview(raw)))
                return None
            texts = [(f.name, t) for f, t in zip(rec.fields, parts)]
        values: dict[str, Any] = {}
        ok = True
        for f, (name, t) in zip(rec.fields, texts):
            try:
                value = parse_field(f, t)
                if f.type != "filler":
                    values[name] = value
            except FieldProblem as e:
                ok = False
                self._report(MalformedInput(str(e), source=src, line=lineno, field=name, value=t))
        return values if ok else None

    def _field_at(self, rec: RecordSpec, raw: bytes, offset: int) -> str | None:
        """Name of the field holding byte ``offset`` of the line (best effort)."""
        if self.spec.kind == "fixed":
            return next((f.name for f in rec.fields if f.start - 1 <= offset < f.end), None)
        index = raw[:offset].count(self.spec.delimiter.encode("ascii"))
        return rec.fields[index].name if index < len(rec.fields) else None

    def _read_header(self) -> None:
        spec = self.spec
        if spec.header is None:
            return
        first = self._next()
        if first is None:
            self._report(MalformedInput("empty file: no header record", source=self.source, line=1, value=b""))
            return
        lineno, raw = first
        if spec.identify == "tag" and self._kind_of(raw, is_last=False) is not spec.header:
            self._report(MalformedInput("missing header: the first line is not a header record",
                                        source=self.source, line=lineno, field=spec.header.fields[0].name,
                                        value=self._tag(raw)))
            self._pending = first  # collecting: read it as whatever it is
            return
        values = self._parse(spec.header, raw, lineno)
        if values is not None:
            self.header = MappingProxyType(values)
            self._header_line = lineno

    def __iter__(self) -> Iterator[Record]:
        if self._started:
            raise RuntimeError("a FlatReader can be iterated once")
        self._started = True
        return self._records()

    def _records(self) -> Iterator[Record]:
        spec = self.spec
        trailer_line = None
        while (item := self._next()) is not None:
            lineno, raw = item
            rec = self._kind_of(raw, is_last=self._peek() is None)
            if trailer_line is not None:
                self._report(SchemaViolation(f"record after the trailer (line {trailer_line})", source=self.source,
                                             line=lineno, field=spec.detail.fields[0].name, value=self._tag(raw)))
                continue
            if rec is None:
                self._report(SchemaViolation("unknown record type", source=self.source, line=lineno,
                                             field=spec.detail.fields[0].name, value=self._tag(raw)))
                continue
            if rec is spec.header:
                self._report(SchemaViolation("stray header record: the header is the first line only",
                                             source=self.source, line=lineno, field=rec.fields[0].name,
                                             value=self._tag(raw)))
                continue
            if rec is spec.trailer:
                trailer_line = lineno
                values = self._parse(rec, raw, lineno)
                if values is not None:
                    self.trailer = MappingProxyType(values)
                continue
            self.count += 1
            values = self._parse(rec, raw, lineno)
            if values is None:
                self._row_failures += 1
                continue
            record = self._detail(values, lineno)
            if record is not None:
                yield record
        if spec.trailer is not None and trailer_line is None:
            self._report(MalformedInput("truncated: the file ends without a trailer record", source=self.source,
                                        line=self._last_line + 1, field=spec.trailer.fields[0].name, value=b""))
        self._check_controls(spec.header, self.header, self._header_line)
        self._check_controls(spec.trailer, self.trailer, trailer_line)

    def _detail(self, values: dict[str, Any], lineno: int) -> Record | None:
        spec = self.spec
        if spec.role == "instruction" and "sequence" in values and values["sequence"] != self.count:
            self._row_failures += 1
            self._report(SchemaViolation(f"sequence out of order: expected {self.count}", source=self.source,
                                         line=lineno, field="sequence", value=values["sequence"]))
            return None
        for name in self._sum_fields:
            v = values.get(name)
            if isinstance(v, Decimal):
                self._sums[name] = self._sums.get(name, Decimal("0.00")) + v
        self.sum = self._sums.get("amount", Decimal("0.00"))
        if spec.role == "instruction":
            return transfer_from_values(values, spec, bank_code=self.bank_code)
        return status_line_from_values(values, spec, line=lineno, reasons=self.reasons)

    def _check_controls(self, rec: RecordSpec | None, values: Mapping[str, Any] | None, lineno: int | None) -> None:
        if rec is None or values is None:
            return
        for f in rec.controls:
            declared = values.get(f.name)
            if f.control == "count":
                if declared != self.count:
                    self._report(ControlTotalMismatch(
                        f"{rec.kind} declares {declared} detail records but the file has {self.count}",
                        source=self.source, line=lineno, field=f.name, value=declared))
            elif self._row_failures == 0:  # a sum over rows we could not read proves nothing more
                actual = self._sums.get(f.of, Decimal("0.00"))
                if declared != actual:
                    self._report(ControlTotalMismatch(
                        f"{rec.kind} declares a sum of {f.of} of {declared} but the details add up to {actual}",
                        source=self.source, line=lineno, field=f.name, value=declared))


def _preview(raw: bytes, encoding: str, limit: int = 120) -> str:
    """A readable excerpt of a line for an error's ``value`` (undecodable bytes shown as escapes)."""
    text = raw[:limit].decode(encoding, "backslashreplace")
    return text + "..." if len(raw) > limit else text


def open_flat(stream: BinaryIO, spec: FileSpec, *, source: str, collect: bool = False,
              reasons: ReasonTable | None = None, bank_code: str = "") -> FlatReader:
    """Open a flat file for streaming: reads the header now, the details as you iterate.

    :param stream: binary file object (read line by line; memory stays flat).
    :param spec: ``layout.instruction`` or ``layout.result``; it decides what the records are.
    :param source: the file's name for error messages.
    :param collect: gather every problem in ``reader.problems`` instead of raising the first.
    :param reasons: result files: the table mapping bank reason texts to project codes.
    :param bank_code: instruction files: ``creditor_bank_code`` when the layout has no bank_code field.
    :raises InboundFormatError: (fail-fast) the first problem, with source, line, field, value.
    """
    return FlatReader(stream, spec, source=source, collect=collect, reasons=reasons, bank_code=bank_code)


def read_flat(data: bytes, spec: FileSpec, *, source: str, collect: bool = False,
              reasons: ReasonTable | None = None, bank_code: str = "") -> FlatContents:
    """Read a whole flat file held in memory. Same parameters and errors as :func:`open_flat`."""
    reader = open_flat(io.BytesIO(data), spec, source=source, collect=collect, reasons=reasons, bank_code=bank_code)
    records = tuple(reader)
    return FlatContents(header=reader.header, records=records, trailer=reader.trailer,
                        problems=tuple(reader.problems))


def check_flat(data: bytes | BinaryIO, spec: FileSpec, *, source: str, reasons: ReasonTable | None = None
               ) -> list[FormatError]:
    """Every problem of a flat file (empty list: the file is good). Never raises a FormatError."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    reader = open_flat(stream, spec, source=source, collect=True, reasons=reasons)
    for _ in reader:
        pass
    return list(reader.problems)
