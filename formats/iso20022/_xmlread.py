"""Reading values out of parsed ISO 20022 elements, with errors that name source, line and field."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import BinaryIO

from lxml import etree

from formats.errors import FormatError, MalformedInput, SchemaViolation, UnsupportedMessage
from formats.money import yuan
from formats.iso20022.detect import detect
from formats.xmlsafe import GuardedStream, namespace

_AMOUNT = re.compile(r"^\d{1,18}(\.\d{1,5})?$")
#: the common shape ``123.45``: ``Decimal(raw)`` is then exactly what :func:`parse_amount` gives
_PLAIN_AMOUNT = re.compile(r"\d{1,18}\.\d\d")


class Paths:
    """Clark-notation paths for one namespace: ``Paths(ns)["GrpHdr/MsgId"]`` -> ``'{ns}GrpHdr/{ns}MsgId'``."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self._cache: dict[str, str] = {}

    def __getitem__(self, path: str) -> str:
        p = self._cache.get(path)
        if p is None:
            p = "/".join(part if part in (".", "..") else f"{{{self.ns}}}{part}" for part in path.split("/"))
            self._cache[path] = p
        return p


class Fields:
    """Typed access to the children of one element; every error names ``source``, line and field."""

    __slots__ = ("source", "p")

    def __init__(self, source: str, paths: Paths) -> None:
        self.source = source
        self.p = paths

    def opt(self, elem: etree._Element, path: str) -> str | None:
        value = elem.findtext(self.p[path])
        return value or None

    def req(self, elem: etree._Element, path: str) -> str:
        value = self.opt(elem, path)
        if value is None:
            raise SchemaViolation(f"required element {path} is missing or empty", source=self.source, line=elem.sourceline, field=path)
        return value

    def line_of(self, elem: etree._Element, path: str) -> int | None:
        child = elem.find(self.p[path])
        return (child if child is not None else elem).sourceline

    def amount(self, elem: etree._Element, path: str, *, required: bool = True) -> Decimal | None:
        raw = self.req(elem, path) if required else self.opt(elem, path)
        if raw is None:
            return None
        raw = raw.strip()
        if _PLAIN_AMOUNT.fullmatch(raw):  # the line is only looked up for an error
            return Decimal(raw)
        return parse_amount(raw, source=self.source, line=self.line_of(elem, path), field=path)

    def currency(self, elem: etree._Element, path: str) -> str | None:
        child = elem.find(self.p[path])
        return None if child is None else child.get("Ccy")

    def datetime(self, elem: etree._Element, path: str, *, required: bool = True) -> dt.datetime | None:
        raw = self.req(elem, path) if required else self.opt(elem, path)
        if raw is None:
            return None
        raw = raw.strip()
        try:
            return dt.datetime.fromisoformat(raw)
        except ValueError:
            raise MalformedInput("not an ISO date-time", source=self.source, line=self.line_of(elem, path), field=path, value=raw) from None

    def date(self, elem: etree._Element, path: str, *, required: bool = True) -> dt.date | None:
        raw = self.req(elem, path) if required else self.opt(elem, path)
        if raw is None:
            return None
        raw = raw.strip()
        try:
            if len(raw) > 10:  # DtTm or a date with a time-zone offset
                return dt.datetime.fromisoformat(raw).date() if "T" in raw else dt.date.fromisoformat(raw[:10])
            return dt.date.fromisoformat(raw)
        except ValueError:
            raise MalformedInput("not an ISO date", source=self.source, line=self.line_of(elem, path), field=path, value=raw) from None

    def integer(self, elem: etree._Element, path: str, *, required: bool = True) -> int | None:
        raw = self.req(elem, path) if required else self.opt(elem, path)
        if raw is None:
            return None
        raw = raw.strip()
        if not raw.isascii() or not raw.isdigit() or len(raw) > 15:
            raise MalformedInput("not a count", source=self.source, line=self.line_of(elem, path), field=path, value=raw)
        return int(raw)


class Irregular(Exception):
    """Raised by the readers' fast paths for a shape they do not handle (a repeated child, an
    odd value); the reader then takes its path lookups, which give the exact result or error."""


def children(elem: etree._Element) -> dict:
    """``{tag: child}`` for the children of ``elem``, in one pass; :class:`Irregular` when a tag
    repeats. With no repeats ``children(e).get(tag)`` is exactly ``e.find(tag)``."""
    first = {}
    for child in elem:
        first[child.tag] = child
    if len(first) != len(elem):
        raise Irregular
    return first


def descend(elem: etree._Element | None, *tags: str) -> etree._Element | None:
    """Exactly ``elem.find("t1/t2/...")`` (Clark tags) when no step repeats; else :class:`Irregular`."""
    for tag in tags:
        if elem is None:
            return None
        if len(elem) == 1:  # the usual wrapper with one child: no map needed
            elem = elem[0]
            if elem.tag != tag:
                return None
        else:
            elem = children(elem).get(tag)
    return elem


def text_of(elem: etree._Element | None) -> str | None:
    """``findtext(...) or None`` for an element already found."""
    return (elem.text or None) if elem is not None else None


class RecordShapes:
    """Reads one kind of record (``TxDtls``, ...) by its shape, compiling path lookups once per shape.

    ``finders`` is a sequence of functions ``record -> element | list of elements | None``: the
    path lookups, the exact reference. A record's shape is its pre-order sequence of tags and
    numbers of children, which determines the tree and so the result of every path lookup.
    For a new shape the finders run once on the record and the positions of what they found
    are kept; records of a known shape are then read in one pass over their elements.
    :meth:`read` gives ``(plan, elements)``: ``plan[k]`` is the position in ``elements`` of what
    ``finders[k]`` finds (``None`` for nothing, a tuple of positions for a list). Past
    ``max_shapes`` distinct shapes (a hostile file) it gives ``None`` for new shapes and the
    caller uses the path lookups.
    """

    def __init__(self, finders, *, max_shapes: int = 256) -> None:
        self._finders = tuple(finders)
        self._plans: dict[tuple, tuple] = {}
        self._max_shapes = max_shapes

    def read(self, record: etree._Element) -> tuple[tuple, list] | None:
        elements = list(record.iter())
        shape = (tuple([e.tag for e in elements]), tuple(map(len, elements)))
        plan = self._plans.get(shape)
        if plan is None:
            if len(self._plans) >= self._max_shapes:
                return None
            position = {e: i for i, e in enumerate(elements)}
            found = [find(record) for find in self._finders]
            plan = tuple(None if f is None else tuple(position[e] for e in f) if isinstance(f, list) else position[f]
                         for f in found)
            self._plans[shape] = plan
        return plan, elements


def plain_date(raw: str | None) -> dt.date | None:
    """``None`` for no text; the date of a plain ``YYYY-MM-DD`` (exactly what ``Fields.date`` gives
    for it); :class:`Irregular` for anything else."""
    if not raw:
        return None
    if len(raw) <= 10:
        try:
            return dt.date.fromisoformat(raw)
        except ValueError:
            pass
    raise Irregular


def plain_amount(raw: str | None) -> Decimal | None:
    """``None`` for no text; ``Decimal(raw)`` when ``raw`` is a plain ``123.45`` (exactly what
    :func:`parse_amount` gives for it); :class:`Irregular` for anything else."""
    if not raw:
        return None
    if _PLAIN_AMOUNT.fullmatch(raw):
        return Decimal(raw)
    raise Irregular


def parse_amount(raw: str, *, source: str, line: int | None, field: str) -> Decimal:
    """``'12.50'`` -> ``Decimal('12.50')``; refuses anything that is not a plain non-negative amount
    with at most two significant decimals (CNY has fen, not less)."""
    if not _AMOUNT.match(raw):
        raise MalformedInput("not an amount", source=source, line=line, field=field, value=raw)
    try:
        return yuan(Decimal(raw).normalize() if "." in raw else Decimal(raw))
    except (ValueError, ArithmeticError):
        raise MalformedInput("amount has fractions of a fen", source=source, line=line, field=field, value=raw) from None


def peek_message_type(stream: BinaryIO, *, source: str, expected_prefix: str, supported: frozenset[str]) -> tuple[str, BinaryIO]:
    """Read the head of ``stream`` to learn its message type; return it and a stream that
    yields the whole document again. Raises :class:`UnsupportedMessage` for other types."""
    if isinstance(stream, (bytes, bytearray, memoryview)):
        import io

        stream = io.BytesIO(bytes(stream))
    head = b""
    try:
        while len(head) < 8192:
            chunk = stream.read(8192 - len(head))
            if not chunk:
                break
            if not isinstance(chunk, (bytes, bytearray)):
                raise MalformedInput("input stream must yield bytes", source=source, line=1)
            head += bytes(chunk)
    except FormatError:
        raise
    except Exception as exc:
        raise MalformedInput(f"cannot read input: {exc}", source=source, line=1) from None
    # hostile content in the head is reported as such before anything else
    GuardedStream(stream, source=source, max_bytes=1 << 62).check(head)
    kind = detect(head)
    if kind not in supported:
        if kind.startswith(expected_prefix) or kind.startswith(("pain.", "camt.", "acmt.", "pacs.")):
            raise UnsupportedMessage(f"{kind} is not a supported {expected_prefix} version", source=source, line=1, field="Document/@xmlns", value=kind)
        raise UnsupportedMessage(f"not an ISO 20022 {expected_prefix} message", source=source, line=1, field="Document/@xmlns", value=kind)
    return kind, _Prepend(head, stream)


class _Prepend:
    """A read()-able stream: ``head`` bytes then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                size = len(self._head)
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._stream.read(size)


def check_root(elem: etree._Element, ns: str, name: str, source: str) -> None:
    """Structural check: the document's root is ``{ns}Document`` holding ``{ns}name``."""
    root = elem.getroottree().getroot()
    if root.tag != f"{{{ns}}}Document":
        raise SchemaViolation("root element must be Document", source=source, line=root.sourceline, field="Document", value=root.tag)
    first = next(iter(root), None)
    if first is None or first.tag != f"{{{ns}}}{name}":
        raise SchemaViolation(f"Document must hold {name}", source=source, line=root.sourceline, field=name,
                              value=None if first is None else first.tag)
    if namespace(elem.tag) != ns:  # pragma: no cover - tags are filtered by namespace
        raise SchemaViolation("element in an unexpected namespace", source=source, line=elem.sourceline, value=elem.tag)
