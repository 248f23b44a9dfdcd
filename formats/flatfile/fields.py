"""One field's value <-> bytes, per its :class:`~formats.flatfile.layout.FieldSpec`.

Both directions raise :class:`FieldProblem` (a plain message); the reader and writer wrap it into
an inbound or outbound :class:`~formats.errors.FormatError` that names source, line, field, value.

>>> from formats.flatfile.layout import FieldSpec
>>> render_field(FieldSpec("amount", "fen", start=1, length=8, align="right", pad="0"), yuan("12.50"), "gbk", fixed=True)
b'00001250'
>>> parse_field(FieldSpec("amount", "yuan2"), "12.50")
Decimal('12.50')
>>> render_field(FieldSpec("name", "str", start=1, length=4), "张三丰", "gbk", fixed=True)
Traceback (most recent call last):
...
formats.flatfile.fields.FieldProblem: too long: 6 bytes in gbk, the field holds 4
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from formats.flatfile.layout import FieldSpec
from formats.money import format_yuan, from_fen, to_fen, yuan

__all__ = ["FieldProblem", "render_field", "parse_field", "yuan"]

_DIGITS = re.compile(r"[0-9]{1,18}")
_YUAN2 = re.compile(r"[0-9]{1,16}\.[0-9]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FieldProblem(ValueError):
    """A field value could not be rendered or parsed; the caller adds where."""


def _text_of(spec: FieldSpec, value: object) -> str:
    """The field's text (before encoding and padding) for a model value."""
    if spec.value is not None:
        return spec.value
    if spec.type == "filler":
        return ""
    if value is None or value == "":
        if spec.required:
            raise FieldProblem("required field is empty")
        return ""
    t = spec.type
    if t == "str":
        if not isinstance(value, str):
            raise FieldProblem(f"expected text, got {type(value).__name__}")
        if value != value.strip():
            raise FieldProblem("text has leading or trailing whitespace (it would not survive padding)")
        if _CONTROL.search(value):
            raise FieldProblem("text contains a control character")
        return value
    if t == "int":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FieldProblem(f"expected a non-negative integer, got {value!r}")
        return str(value)
    if t == "date":
        if not isinstance(value, dt.date):
            raise FieldProblem(f"expected a date, got {value!r}")
        return value.strftime(spec.format)
    if t in ("yuan2", "fen"):
        if not isinstance(value, Decimal):
            raise FieldProblem(f"amounts must be Decimal, got {type(value).__name__} {value!r}")
        try:
            amount = yuan(value)
        except (TypeError, ValueError) as e:
            raise FieldProblem(str(e)) from None
        if amount < 0:
            raise FieldProblem(f"negative amount {amount}")
        return format_yuan(amount) if t == "yuan2" else str(to_fen(amount))
    if t == "enum":
        for text, meaning in spec.values.items():
            if meaning == value or text == value:
                return text
        raise FieldProblem(f"no file text for {value!r} (known: {dict(spec.values)})")
    raise FieldProblem(f"cannot render type {t!r}")  # pragma: no cover - layout validation prevents it


def render_field(spec: FieldSpec, value: object, encoding: str, *, fixed: bool, delimiter: str = "|") -> bytes:
    """Render ``value`` as this field's bytes: encoded, length-checked and, if ``fixed``, padded.

    Never truncates: text too long for the field, or not encodable, raises :class:`FieldProblem`.
    """
    text = _text_of(spec, value)
    if not fixed and delimiter in text:
        raise FieldProblem(f"text contains the delimiter {delimiter!r}")
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError as e:
        bad = text[e.start:e.end]
        raise FieldProblem(f"character {bad!r} (U+{ord(bad[0]):04X}) cannot be encoded in {encoding}") from None
    limit = spec.byte_limit
    if limit is not None and len(data) > limit:
        raise FieldProblem(f"too long: {len(data)} bytes in {encoding}, the field holds {limit}")
    if fixed:
        fill = spec.pad.encode("ascii") * (spec.length - len(data))
        data = data + fill if spec.align == "left" else fill + data
    return data


def unpad(spec: FieldSpec, text: str) -> str:
    """Remove a fixed-width field's padding (and surrounding spaces) from its text."""
    if spec.pad == "0" and spec.align == "right":
        stripped = text.strip(" ").lstrip("0")
        if stripped.startswith("."):
            stripped = "0" + stripped
        return stripped or ("0" if text.strip(" ") else "")
    return text.strip(" ")


def parse_field(spec: FieldSpec, text: str) -> object:
    """Parse one field's (decoded, unpadded) text into its value; ``None`` for an empty optional field.

    Amounts come back as ``Decimal`` with two places (``fen`` fields are converted from integer fen).
    """
    if _CONTROL.search(text):
        raise FieldProblem("control character in field")
    text = text.strip(" ")
    if spec.type == "filler":
        if text:
            raise FieldProblem("filler is not blank")
        return None
    if spec.value is not None:
        if text != spec.value:
            raise FieldProblem(f"expected {spec.value!r}")
        return text
    if text == "":
        if spec.required:
            raise FieldProblem("required field is empty")
        return None
    t = spec.type
    if t == "str":
        return text
    if t in ("int", "fen"):
        if not _DIGITS.fullmatch(text):
            raise FieldProblem("not a whole number of at most 18 digits")
        return int(text) if t == "int" else from_fen(int(text))
    if t == "yuan2":
        if not _YUAN2.fullmatch(text):
            raise FieldProblem("not an amount in yuan with two decimals (e.g. 1234.50)")
        return Decimal(text)
    if t == "date":
        try:
            d = dt.datetime.strptime(text, spec.format).date()
        except ValueError:
            raise FieldProblem(f"not a date in format {spec.format}") from None
        if d.strftime(spec.format) != text:
            raise FieldProblem(f"not a date in format {spec.format}")
        return d
    if t == "enum":
        if text not in spec.values:
            raise FieldProblem(f"unknown value (one of {', '.join(spec.values)})")
        return spec.values[text]
    raise FieldProblem(f"cannot parse type {t!r}")  # pragma: no cover
