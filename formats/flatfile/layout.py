"""Declarative layouts of a bank's flat files: the instruction file we send and the result file it returns.

A layout is data (``config/layouts/*.toml``), loaded into frozen dataclasses by
:func:`layout_from_mapping`, which checks it strictly and reports *every* problem with its key path.

Shape of a layout (TOML)::

    name = "rcb_pipe"
    [instruction]                    # a FileSpec, role "instruction"
    kind = "delimited"               # or "fixed"
    delimiter = "|"                  # delimited only
    encoding = "gbk"                 # default gbk
    line_ending = "CRLF"             # or "LF"; default CRLF; the last line must end with it too
    identify = "tag"                 # records told apart by a constant first field, or "position"
                                     # (first line header, last line trailer, the rest details)
    key = "sequence"                 # the detail field the bank echoes in results: "sequence" or "reference"
    [instruction.header]
    fields = [ { name = "record_type", type = "str", value = "H" }, ... ]
    [instruction.detail]  ...
    [instruction.trailer] ...        # header and trailer are optional
    [result] ...                     # a FileSpec, role "result" (optional)

A field: ``name``; ``type`` one of ``str``, ``int``, ``date`` (with ``format``, e.g. ``"%Y%m%d"``),
``yuan2`` (yuan with exactly two decimals, ``"1234.50"``), ``fen`` (integer fen, ``"123450"``),
``enum`` (with ``values``: file text -> meaning), ``filler`` (fixed-width blanks); ``required``
(default true); ``max_length`` in *bytes of the encoding* (a GBK Chinese character is 2 bytes);
``value`` (a constant, e.g. the record type); fixed-width only: ``start`` (1-based byte position),
``length`` (bytes), ``align`` (``left``/``right``), ``pad`` (``" "`` or ``"0"``); header/trailer only:
``control = "count"`` (number of detail records) or ``control = "sum"`` with ``of = "<detail field>"``.

Field names map to the model (the vocabulary below is enforced; constants and fillers may have any name):

==========================  =========================================================
instruction detail          model
==========================  =========================================================
``sequence``                1-based position in the file (written by us)
``reference``               ``CreditTransfer.end_to_end_id``
``name``                    ``CreditTransfer.creditor_name``
``amount``                  ``CreditTransfer.amount``
``account``                 ``CreditTransfer.creditor_account``
``bank_code``               ``CreditTransfer.creditor_bank_code``
``id_type``                 ``CreditTransfer.id_type``
``id_number``               ``CreditTransfer.id_number``
``remark``                  ``CreditTransfer.remittance``
``instruction_id``          ``CreditTransfer.instruction_id``
instruction header/trailer  ``date`` = ``PaymentHeader.requested_execution_date``, ``unit_code`` =
                            the ``unit_code`` argument of the writer, ``message_id``,
                            ``payment_info_id``, ``debtor_name``, ``debtor_account`` = same
                            ``PaymentHeader`` attributes
result detail               ``sequence``/``reference`` (the key, see below) ->
                            ``TransactionStatusLine.original_end_to_end_id``; ``amount``,
                            ``account`` -> ``amount``, ``creditor_account``; ``status`` (enum whose
                            meanings are ``TxStatus`` codes) -> ``status``; ``reason_text`` ->
                            ``reason_text`` (and ``reason_code`` through the reason table);
                            ``name`` is echoed by the bank and not kept in the model
result header/trailer       ``date``, ``unit_code``, ``message_id`` (of the instruction answered)
==========================  =========================================================

``key``: when the detail has a ``reference`` field and ``key = "reference"``, our EndToEndId
travels to the bank and back. When ``key = "sequence"`` the bank only echoes the sequence; the
reader then puts the sequence number (as text, ``"1"``, ``"2"`` ...) into ``end_to_end_id`` /
``original_end_to_end_id``, and the caller, who knows the order it wrote, resolves it.

>>> spec = {"name": "t", "instruction": {"kind": "delimited", "identify": "position", "detail": {"fields": [
...     {"name": "sequence", "type": "int"}, {"name": "name", "type": "str"}, {"name": "amount", "type": "money"},
...     {"name": "account", "type": "str"}]}}}
>>> layout_from_mapping(spec, source="t.toml")
Traceback (most recent call last):
...
formats.flatfile.layout.LayoutError: t.toml: 1 problem in layout
t.toml: instruction.detail.fields[2].type: unknown type 'money' (one of str, int, date, yuan2, fen, enum, filler)
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Mapping

from formats.errors import FormatError
from formats.model import TxStatus

FIELD_TYPES = ("str", "int", "date", "yuan2", "fen", "enum", "filler")
ROLES = ("instruction", "result")
RECORD_KINDS = ("header", "detail", "trailer")
LINE_ENDINGS = {"CRLF": "\r\n", "LF": "\n"}

#: Field names with a meaning, per role and record kind -> the types they may have.
AMOUNT_TYPES = ("yuan2", "fen")
VOCABULARY: Mapping[tuple[str, str], Mapping[str, tuple[str, ...]]] = {
    ("instruction", "detail"): {
        "sequence": ("int",), "reference": ("str",), "name": ("str",), "amount": AMOUNT_TYPES,
        "account": ("str",), "bank_code": ("str",), "id_type": ("str", "enum"), "id_number": ("str",),
        "remark": ("str",), "instruction_id": ("str",),
    },
    ("instruction", "edge"): {
        "date": ("date",), "unit_code": ("str",), "message_id": ("str",), "payment_info_id": ("str",),
        "debtor_name": ("str",), "debtor_account": ("str",),
    },
    ("result", "detail"): {
        "sequence": ("int",), "reference": ("str",), "name": ("str",), "amount": AMOUNT_TYPES,
        "account": ("str",), "status": ("enum",), "reason_text": ("str",),
    },
    ("result", "edge"): {"date": ("date",), "unit_code": ("str",), "message_id": ("str",)},
}


class LayoutError(FormatError):
    """A layout mapping is not valid. ``problems`` lists every one as ``source: key.path: message``."""

    def __init__(self, problems: list[tuple[str, str]], *, source: str) -> None:
        self.problems = tuple(f"{source}: {path}: {msg}" for path, msg in problems)
        n = len(problems)
        head = f"{n} problem{'s' if n != 1 else ''} in layout"
        first_path, first_msg = problems[0] if problems else (None, None)
        super().__init__(head + "\n" + "\n".join(self.problems), source=source, field=first_path)

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass(frozen=True)
class FieldSpec:
    """One field of a record. Lengths are bytes of the file's encoding. See the module docstring."""

    name: str
    type: str
    required: bool = True
    max_length: int | None = None
    start: int | None = None
    length: int | None = None
    align: str = "left"
    pad: str = " "
    format: str | None = None
    values: Mapping[str, str] | None = None
    value: str | None = None
    control: str | None = None
    of: str | None = None

    @property
    def end(self) -> int | None:
        """Last byte position (1-based, inclusive) of a fixed-width field."""
        return None if self.start is None or self.length is None else self.start + self.length - 1

    @property
    def byte_limit(self) -> int | None:
        """The most bytes this field's text may take: ``length`` (fixed) or ``max_length``."""
        limits = [n for n in (self.length, self.max_length) if n is not None]
        return min(limits) if limits else None


@dataclass(frozen=True)
class RecordSpec:
    """Header, detail or trailer record: its fields in order and, with ``identify = "tag"``, its tag."""

    kind: str
    fields: tuple[FieldSpec, ...]
    tag: str | None = None

    @property
    def length(self) -> int | None:
        """Record length in bytes for fixed-width records (None for delimited)."""
        last = self.fields[-1].end
        return last

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def controls(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.control)


@dataclass(frozen=True)
class FileSpec:
    """One file of a layout: an instruction file or a result file."""

    name: str
    role: str
    kind: str
    detail: RecordSpec
    header: RecordSpec | None = None
    trailer: RecordSpec | None = None
    delimiter: str = "|"
    encoding: str = "gbk"
    line_ending: str = "\r\n"
    identify: str = "tag"
    key: str = "sequence"
    max_line_bytes: int = 4096

    @property
    def records(self) -> tuple[RecordSpec, ...]:
        return tuple(r for r in (self.header, self.detail, self.trailer) if r is not None)


@dataclass(frozen=True)
class FileLayout:
    """A bank's flat-file layout: the instruction file and (optionally) its result file."""

    name: str
    instruction: FileSpec
    result: FileSpec | None = None
    description: str = ""


# --------------------------------------------------------------------------- validation

_FIELD_KEYS = {f for f in FieldSpec.__dataclass_fields__}
_FILE_KEYS = {"kind", "delimiter", "encoding", "line_ending", "identify", "key", "max_line_bytes",
              "header", "detail", "trailer"}
_DATE_FORMAT = re.compile(r"^(%[Ymd]|[-/.])+$")


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.broken: set[tuple[str, str]] = set()  # (record path, field name) of fields with problems

    def add(self, path: str, msg: str) -> None:
        self.items.append((path, msg))


def _unknown_keys(data: Mapping, allowed: set[str], path: str, p: _Problems) -> None:
    for k in data:
        if k not in allowed:
            p.add(f"{path}.{k}" if path else str(k), f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _get(data: Mapping, key: str, kind: type | tuple, path: str, p: _Problems, default: Any = None,
         required: bool = False) -> Any:
    if key not in data:
        if required:
            p.add(f"{path}.{key}" if path else key, "missing")
        return default
    v = data[key]
    if isinstance(v, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        p.add(f"{path}.{key}", f"expected {_kname(kind)}, got {v!r}")
        return default
    if not isinstance(v, kind):
        p.add(f"{path}.{key}" if path else key, f"expected {_kname(kind)}, got {v!r}")
        return default
    return v


def _kname(kind: type | tuple) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", bool: "true/false", dict: "a table", list: "an array"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _field(data: Any, path: str, role: str, rkind: str, fixed: bool, encoding: str,
           p: _Problems) -> FieldSpec | None:
    if not isinstance(data, dict):
        p.add(path, f"expected a table, got {data!r}")
        return None
    n0 = len(p.items)
    _unknown_keys(data, _FIELD_KEYS, path, p)
    name = _get(data, "name", str, path, p, required=True)
    ftype = _get(data, "type", str, path, p, required=True)
    if ftype is not None and ftype not in FIELD_TYPES:
        p.add(f"{path}.type", f"unknown type {ftype!r} (one of {', '.join(FIELD_TYPES)})")
    required = _get(data, "required", bool, path, p, default=True)
    max_length = _get(data, "max_length", int, path, p)
    start = _get(data, "start", int, path, p)
    length = _get(data, "length", int, path, p)
    align = _get(data, "align", str, path, p, default="right" if ftype in ("int", "fen", "yuan2") and fixed else "left")
    pad = _get(data, "pad", str, path, p, default="0" if ftype in ("int", "fen", "yuan2") and fixed else " ")
    fmt = _get(data, "format", str, path, p)
    values = _get(data, "values", dict, path, p)
    value = _get(data, "value", str, path, p)
    control = _get(data, "control", str, path, p)
    of = _get(data, "of", str, path, p)

    for key, v in (("max_length", max_length), ("start", start), ("length", length)):
        if v is not None and v < 1:
            p.add(f"{path}.{key}", f"must be at least 1, got {v}")
    if fixed:
        if start is None:
            p.add(f"{path}.start", "missing (fixed-width fields need start and length)")
        if length is None:
            p.add(f"{path}.length", "missing (fixed-width fields need start and length)")
    else:
        for key in ("start", "length", "align", "pad"):
            if key in data:
                p.add(f"{path}.{key}", "only for fixed-width layouts")
    if align not in ("left", "right"):
        p.add(f"{path}.align", f"must be 'left' or 'right', got {align!r}")
    if pad not in (" ", "0"):
        p.add(f"{path}.pad", f"must be ' ' or '0', got {pad!r}")
    elif pad == "0" and ftype in ("str", "enum", "date"):
        p.add(f"{path}.pad", f"zero padding would change a {ftype} value; use ' '")
    if ftype == "date":
        if fmt is None:
            p.add(f"{path}.format", "missing (date fields need a format such as '%Y%m%d')")
        elif not _DATE_FORMAT.match(fmt) or not all(d in fmt for d in ("%Y", "%m", "%d")):
            p.add(f"{path}.format", f"unsupported date format {fmt!r} (use %Y, %m, %d and - / .)")
    elif fmt is not None:
        p.add(f"{path}.format", "only for date fields")
    if ftype == "enum":
        if not values:
            p.add(f"{path}.values", "missing (enum fields need values: file text -> meaning)")
        else:
            for k, v in values.items():
                if not isinstance(v, str) or not k:
                    p.add(f"{path}.values.{k}", f"expected a non-empty key and a string meaning, got {v!r}")
            meanings = list(values.values())
            if len(set(meanings)) != len(meanings):
                p.add(f"{path}.values", "two file texts have the same meaning; writing would be ambiguous")
            if name == "status":
                codes = {s.value for s in TxStatus}
                for k, v in values.items():
                    if v not in codes:
                        p.add(f"{path}.values.{k}", f"status meaning {v!r} is not a TxStatus code "
                                                     f"({', '.join(sorted(codes))})")
    elif values is not None:
        p.add(f"{path}.values", "only for enum fields")
    if ftype == "filler" and not fixed:
        p.add(f"{path}.type", "filler is only for fixed-width layouts")

    if control is not None:
        if rkind == "detail":
            p.add(f"{path}.control", "control totals belong in a header or trailer")
        elif control == "count":
            if ftype != "int":
                p.add(f"{path}.type", f"a count control must be int, got {ftype!r}")
        elif control == "sum":
            if ftype not in AMOUNT_TYPES:
                p.add(f"{path}.type", f"a sum control must be yuan2 or fen, got {ftype!r}")
            if of is None:
                p.add(f"{path}.of", "missing (name the detail field this sum totals)")
        else:
            p.add(f"{path}.control", f"must be 'count' or 'sum', got {control!r}")
    if of is not None and control != "sum":
        p.add(f"{path}.of", "only for control = 'sum'")

    if value is not None:
        if ftype not in ("str", "enum", "int"):
            p.add(f"{path}.value", f"constants are text; not for type {ftype!r}")
        try:
            nbytes = len(value.encode(encoding))
            if length is not None and nbytes > length:
                p.add(f"{path}.value", f"constant {value!r} is {nbytes} bytes, the field holds {length}")
        except (UnicodeEncodeError, LookupError):
            p.add(f"{path}.value", f"constant {value!r} cannot be encoded in {encoding}")
    elif control is None and ftype != "filler" and name is not None:
        vocab = VOCABULARY.get((role, "detail" if rkind == "detail" else "edge"), {})
        if name not in vocab:
            p.add(f"{path}.name", f"unknown {role} {rkind} field {name!r} "
                                  f"(one of {', '.join(vocab)}; or give a constant value)")
        elif ftype in FIELD_TYPES and ftype not in vocab[name]:
            p.add(f"{path}.type", f"field {name!r} must be {' or '.join(vocab[name])}, got {ftype!r}")
    if len(p.items) > n0:
        return None
    return FieldSpec(name=name, type=ftype, required=required, max_length=max_length, start=start,
                     length=length, align=align, pad=pad, format=fmt,
                     values=MappingProxyType(dict(values)) if values is not None else None,
                     value=value, control=control, of=of)


def _record(data: Any, path: str, role: str, rkind: str, fixed: bool, identify: str, encoding: str,
            p: _Problems) -> RecordSpec | None:
    if not isinstance(data, dict):
        p.add(path, f"expected a table, got {data!r}")
        return None
    n0 = len(p.items)
    _unknown_keys(data, {"fields"}, path, p)
    raw = _get(data, "fields", list, path, p, required=True)
    if raw is not None and not raw:
        p.add(f"{path}.fields", "empty")
    fields = [_field(f, f"{path}.fields[{i}]", role, rkind, fixed, encoding, p) for i, f in enumerate(raw or [])]
    for f in raw or []:
        if isinstance(f, dict) and isinstance(f.get("name"), str):
            p.broken.add((path, f["name"]))
    for f in fields:
        if f is not None:
            p.broken.discard((path, f.name))
    seen: set[str] = set()
    for i, f in enumerate(fields):
        if f is None:
            continue
        if f.name in seen and f.type != "filler":
            p.add(f"{path}.fields[{i}].name", f"duplicate field name {f.name!r}")
        seen.add(f.name)
    if fixed and fields and all(f is not None for f in fields):
        expected = 1
        for i, f in enumerate(fields):
            if f.start != expected:
                p.add(f"{path}.fields[{i}].start", f"field {f.name!r} starts at {f.start}, expected {expected} "
                                                  f"(fields must follow each other without gap or overlap)")
            expected = f.end + 1
    tag = None
    if identify == "tag" and raw:
        tag = raw[0].get("value") if isinstance(raw[0], dict) else None
        if not isinstance(tag, str):
            p.add(f"{path}.fields[0].value", "with identify = 'tag' the first field must be a constant record type")
    good = tuple(f for f in fields if f is not None)
    if not good:
        return None
    # With problems, a partial record is still returned so that checks across records can run;
    # the layout as a whole is refused anyway.
    return RecordSpec(kind=rkind, fields=good, tag=tag)


def _file(data: Any, path: str, role: str, p: _Problems) -> FileSpec | None:
    if not isinstance(data, dict):
        p.add(path, f"expected a table, got {data!r}")
        return None
    n0 = len(p.items)
    _unknown_keys(data, _FILE_KEYS, path, p)
    kind = _get(data, "kind", str, path, p, required=True)
    if kind is not None and kind not in ("delimited", "fixed"):
        p.add(f"{path}.kind", f"must be 'delimited' or 'fixed', got {kind!r}")
    fixed = kind == "fixed"
    delimiter = _get(data, "delimiter", str, path, p, default="|")
    if fixed and "delimiter" in data:
        p.add(f"{path}.delimiter", "only for delimited layouts")
    elif len(delimiter) != 1 or not delimiter.isascii() or delimiter in "\r\n" or delimiter.isalnum():
        p.add(f"{path}.delimiter", f"must be one ASCII punctuation character, got {delimiter!r}")
    encoding = _get(data, "encoding", str, path, p, default="gbk")
    try:
        if "a|".encode(encoding) != b"a|":
            p.add(f"{path}.encoding", f"{encoding!r} is not ASCII-compatible")
    except LookupError:
        p.add(f"{path}.encoding", f"unknown encoding {encoding!r}")
        encoding = "gbk"
    ending = _get(data, "line_ending", str, path, p, default="CRLF")
    if ending not in LINE_ENDINGS:
        p.add(f"{path}.line_ending", f"must be 'CRLF' or 'LF', got {ending!r}")
    identify = _get(data, "identify", str, path, p, default="tag")
    if identify not in ("tag", "position"):
        p.add(f"{path}.identify", f"must be 'tag' or 'position', got {identify!r}")
    key = _get(data, "key", str, path, p, default="sequence")
    if key not in ("sequence", "reference"):
        p.add(f"{path}.key", f"must be 'sequence' or 'reference', got {key!r}")
    max_line = _get(data, "max_line_bytes", int, path, p, default=4096)
    if max_line < 16 or max_line > 1 << 20:
        p.add(f"{path}.max_line_bytes", f"must be between 16 and 1048576, got {max_line}")

    records: dict[str, RecordSpec | None] = {}
    for rkind in RECORD_KINDS:
        if rkind in data:
            records[rkind] = _record(data[rkind], f"{path}.{rkind}", role, rkind, fixed, identify, encoding, p)
        elif rkind == "detail":
            p.add(f"{path}.detail", "missing")
    detail = records.get("detail")
    dpath = f"{path}.detail"
    if detail is not None:
        if detail.field(key) is None and key in ("sequence", "reference") and (dpath, key) not in p.broken:
            p.add(f"{path}.key", f"key {key!r} names no field of the detail record")
        if role == "result" and detail.field("status") is None and (dpath, "status") not in p.broken:
            p.add(f"{path}.detail.fields", "a result detail needs a 'status' enum field")
        if role == "instruction":
            for needed in ("name", "amount", "account"):
                if detail.field(needed) is None and (dpath, needed) not in p.broken:
                    p.add(f"{path}.detail.fields", f"an instruction detail needs a {needed!r} field")
        for rkind in ("header", "trailer"):
            rec = records.get(rkind)
            if rec is None:
                continue
            for i, f in enumerate(rec.fields):
                if f.control == "sum":
                    target = detail.field(f.of)
                    if (dpath, f.of) in p.broken:
                        continue
                    if target is None or target.type not in AMOUNT_TYPES:
                        p.add(f"{path}.{rkind}.fields[{i}].of", f"{f.of!r} is not an amount field of the detail")
    present = [r for r in records.values() if r is not None and r.tag is not None]
    if identify == "tag":
        tags = [r.tag for r in present]
        if len(set(tags)) != len(tags):
            p.add(f"{path}", f"record types are not distinct: {tags}")
        if fixed and present:
            spans = {(r.fields[0].start, r.fields[0].length) for r in present}
            if len(spans) > 1:
                p.add(f"{path}", "record-type fields must sit at the same positions in every record")
    if len(p.items) > n0 or detail is None:
        return None
    return FileSpec(name=path, role=role, kind=kind, detail=detail, header=records.get("header"),
                    trailer=records.get("trailer"), delimiter=delimiter, encoding=encoding,
                    line_ending=LINE_ENDINGS[ending], identify=identify, key=key, max_line_bytes=max_line)


def layout_from_mapping(data: Mapping[str, Any], *, source: str) -> FileLayout:
    """Build a :class:`FileLayout` from a mapping (a parsed TOML file), checking everything.

    :param data: the mapping, e.g. ``tomllib.load(f)``.
    :param source: the file name used in messages.
    :raises LayoutError: listing every problem with its key path, e.g.
        ``layouts/x.toml: instruction.detail.fields[3].type: unknown type 'money' ...``.
    """
    p = _Problems()
    if not isinstance(data, Mapping):
        raise LayoutError([("", f"expected a table, got {type(data).__name__}")], source=source)
    _unknown_keys(data, {"name", "description", "instruction", "result"}, "", p)
    name = _get(data, "name", str, "", p, required=True)
    description = _get(data, "description", str, "", p, default="")
    instruction = _file(data["instruction"], "instruction", "instruction", p) if "instruction" in data else None
    if "instruction" not in data:
        p.add("instruction", "missing")
    result = _file(data["result"], "result", "result", p) if "result" in data else None
    if p.items:
        raise LayoutError(p.items, source=source)
    assert instruction is not None
    return FileLayout(name=name, description=description,
                      instruction=_named(instruction, f"{name}.instruction"),
                      result=_named(result, f"{name}.result") if result else None)


def _named(spec: FileSpec, name: str) -> FileSpec:
    return replace(spec, name=name)
