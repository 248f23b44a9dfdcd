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
